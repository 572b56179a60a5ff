"""MediaPipe's face detector and face landmark networks, run as plain models.

Both come from the bundled ``face_landmarker.task`` (a zip; the networks are MediaPipe's,
Apache-2.0): ``face_detector.tflite`` (BlazeFace short range, 128 x 128 RGB in [-1, 1] ->
896 anchors x 16 box and keypoint values, 896 scores) and
``face_landmarks_detector.tflite`` (256 x 256 RGB in [0, 1] -> 478 x 3 points in input
pixels, a face-presence logit). The blendshapes network in the bundle is not run. With
``landmarks="lite"`` the landmark network is MediaPipe's earlier face mesh network instead
(``face_landmark_lite.tflite``, beside the bundle: 192 x 192 RGB in [0, 1] -> 468 x 3
points, a face-presence logit), under a third of the CPU (docs/benchmarks.md).

A model is called with uint8 RGB images and scales them into its input itself (one pass,
written straight into the runtime's input buffer), so callers never build float copies.

Three runtimes (``runtime=`` of :class:`FaceModels`):

- ``"openvino"`` (the default): OpenVINO's CPU plugin, reading the ``.tflite`` files
  themselves, in float32 (never the bfloat16 it would pick on CPUs that have it), one thread
  and one image per request, a batch split over up to one compiled copy per core. Timed
  alone on our 2-core Intel Xeon (AVX-512) it ran the full landmark network in 3.7 ms per
  face against LiteRT's 5.1, the lite one in 1.1 against 1.2 and the detector in 1.0
  against 1.1, its outputs within 0.0005 input pixels of LiteRT's (docs/benchmarks.md).
- ``"litert"``: LiteRT (``ai-edge-litert``, XNNPACK), the same way: one thread per
  interpreter, one image per invoke, a batch split over up to one interpreter per core.
- ``"onnxruntime"``: the same networks converted to ONNX once
  (:mod:`stream.faces.tflite_onnx`, cached beside the LipForensics exports) and run by ONNX
  Runtime, the whole batch in one call, on the execution providers asked for (CUDA or
  TensorRT where the network runs on a GPU; the same ONNX files serve a Triton server).
  On the CPU it is 2.4x slower than LiteRT for the landmark network (ONNX Runtime's
  per-channel PReLU and layout changes), and still 9% slower with PReLU rewritten as 1 x 1
  convolutions (paired, ``bench/landmark_runtimes.py``).
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from errors import LipForensicsError
from stream.faces.networks import BUNDLE_PATH, DETECTOR, Network, landmark_network, network_bytes
from stream.faces.tflite_onnx import INPUT_NAME, cached_onnx


def scale_into(images: np.ndarray, network: Network, out: np.ndarray) -> None:
    """Write uint8 ``images`` as the network's float32 input values into ``out``."""
    np.multiply(images, np.float32(network.scale), out=out, casting="unsafe")
    if network.offset:
        out += np.float32(network.offset)


#: the most interpreters of one network a batch is split over (one per core up to this)
MAX_COPIES = 4
#: the threads that run the split parts of batches (:class:`TfliteModel`), shared by every
#: model of the process
SPLIT_POOL = ThreadPoolExecutor(MAX_COPIES, thread_name_prefix="face-model")

#: one interpreter is made at a time: the standard error is the whole process's
_STDERR = threading.Lock()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Standard error closed for the moment LiteRT makes an interpreter: its C++ runtime
    announces its XNNPACK delegate there ("INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU.") with no setting to turn it off, which would land between the one-line
    messages the commands promise."""
    with _STDERR:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class Model(Protocol):
    """A face network on some runtime: :class:`TfliteModel` or :class:`OnnxModel`."""

    network: Network

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """Each output (N, ...) for uint8 (N, H, W, 3) RGB images (N >= 1)."""
        ...


class _Copies:
    """A network run one image at a time on ``copies`` single-threaded executors
    (interpreters, compiled models), made by the subclass.

    Items are run one at a time: on our 2-core machine XNNPACK took about 10% more CPU per
    face for the landmark network batched 4 or 8 than one face at a time
    (docs/benchmarks.md), and a one-image executor never reallocates. A batch of several
    images (the faces of a call gallery, the detector's regions) is split over the copies,
    which run at once on the shared :data:`SPLIT_POOL` (both runtimes let go of the GIL while
    they run), so one crowded stream is not held to one core. Every copy is made up front:
    made when a gallery's first batch needed it, OpenVINO's compiling (0.3 s) stalled that
    frame. :meth:`run` is safe to call from several threads.
    """

    def __init__(self, network: Network, copies: int | None = None) -> None:
        self.network = network
        self._copies = copies or min(MAX_COPIES, len(os.sched_getaffinity(0)))
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for number in range(self._copies):
            self._idle.put(self._new_copy(number))

    def _new_copy(self, number: int) -> object:
        """Executor ``number`` of the network (0, 1, ...)."""
        raise NotImplementedError

    def _invoke(self, copy: object, image: np.ndarray) -> list[np.ndarray]:
        """Each output's values for one uint8 (H, W, 3) image, run on ``copy``."""
        raise NotImplementedError

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for a uint8 (N, H, W, 3) batch of RGB images (N >= 1):
        each output (N, ...) with item i's values at index i."""
        parts = min(len(images), self._copies)
        if parts == 1:
            return self._run_one_by_one(images)
        first, *rest = np.array_split(images, parts)
        pending = [SPLIT_POOL.submit(self._run_one_by_one, chunk) for chunk in rest]
        found = [self._run_one_by_one(first), *(future.result() for future in pending)]
        return [np.concatenate(output) for output in zip(*found, strict=True)]

    def _run_one_by_one(self, images: np.ndarray) -> list[np.ndarray]:
        """``images`` through one executor (the next idle one), item by item."""
        copy = self._idle.get()
        try:
            found = [self._invoke(copy, image) for image in images]
            return [np.stack(values) for values in zip(*found, strict=True)]
        finally:
            self._idle.put(copy)


class TfliteModel(_Copies):
    """One TFLite network on LiteRT's CPU interpreter (XNNPACK), one image per invoke
    (:class:`_Copies`)."""

    def __init__(
        self, content: bytes, network: Network, threads: int = 1, copies: int | None = None
    ) -> None:
        self._content, self._threads = content, threads
        super().__init__(network, copies)

    def _new_copy(self, number: int):
        from ai_edge_litert.interpreter import Interpreter

        with _quiet_stderr():
            interpreter = Interpreter(model_content=self._content, num_threads=self._threads)
            interpreter.allocate_tensors()
        self._input = interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in interpreter.get_output_details()]
        return interpreter

    def _invoke(self, copy, image: np.ndarray) -> list[np.ndarray]:
        scale_into(image[None], self.network, copy.tensor(self._input)())
        copy.invoke()
        return [copy.get_tensor(index)[0] for index in self._outputs]


#: OpenVINO's CPU plugin as :class:`OpenVinoModel` runs it: one thread, float32 (on CPUs
#: with bfloat16 or AMX it would otherwise run in bfloat16), threads not pinned to cores
OPENVINO_CONFIG = {
    "INFERENCE_NUM_THREADS": 1,
    "NUM_STREAMS": 1,
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_PRECISION_HINT": "f32",
    "ENABLE_CPU_PINNING": False,
}


#: held while an OpenVINO copy is made and first run (:meth:`OpenVinoModel._new_copy`)
_OPENVINO_MAKING = threading.Lock()


@functools.cache
def _openvino_compiled(network: Network, content: bytes, copy: int):
    """Copy number ``copy`` of ``network`` (the ``.tflite`` bytes ``content``) compiled by
    OpenVINO for one image, kept for the process: compiling takes about 0.3 s a network, and
    a request of one compiled model runs one image at a time, so copies that run at once are
    compiled models of their own."""
    import openvino

    core = openvino.Core()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / network.name
        path.write_bytes(content)
        model = core.read_model(path)
    model.reshape({model.inputs[0]: [1, network.size, network.size, 3]})
    return core.compile_model(model, "CPU", OPENVINO_CONFIG)


class OpenVinoModel(_Copies):
    """One TFLite network on OpenVINO's CPU plugin (read from the ``.tflite`` itself), one
    image per request (:class:`_Copies`); each copy is a request of its own compiled model
    (:func:`_openvino_compiled`), so copies run at once."""

    def __init__(self, content: bytes, network: Network, copies: int | None = None) -> None:
        self._content = content
        super().__init__(network, copies)

    def _new_copy(self, number: int):
        # The first read of a tensor's values sets up the bindings' numpy interface once per
        # process, and two threads doing that at once deadlock (pybind11's once-only set-up
        # waits for the GIL that the other holds): each copy runs once as it is made, one
        # copy at a time in the process, before any batch is split over threads.
        with _OPENVINO_MAKING:
            compiled = _openvino_compiled(self.network, self._content, number)
            request = compiled.create_infer_request()
            side = self.network.size
            self._invoke(request, np.zeros((side, side, 3), np.uint8))
        return request

    def _invoke(self, copy, image: np.ndarray) -> list[np.ndarray]:
        scale_into(image[None], self.network, copy.get_input_tensor().data)
        copy.infer()
        return [tensor.data[0].copy() for tensor in copy.output_tensors]


class OnnxModel:
    """One network converted to ONNX (:mod:`stream.faces.tflite_onnx`) on ONNX Runtime,
    a whole batch per call. :meth:`run` is safe to call from several threads."""

    def __init__(
        self, path: Path, network: Network, threads: int = 1, providers: Sequence[str] = ()
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.network = network
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=list(providers) or ["CPUExecutionProvider"]
        )

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """As :meth:`TfliteModel.run`: each output (N, ...) for uint8 (N, H, W, 3) images."""
        return self._session.run(None, {INPUT_NAME: np.ascontiguousarray(images, np.uint8)})


#: the runtimes :class:`FaceModels` can run the networks on
RUNTIMES = ("openvino", "litert", "onnxruntime")


class FaceModels:
    """The two networks of one bundle: :attr:`detector` and :attr:`landmarks`.

    One instance can serve every stream of a process (the pipeline's landmark threads take
    turns per call); see :func:`stream.faces.engine.track`. ``runtime`` is one of
    :data:`RUNTIMES`; for ``"onnxruntime"``, ``providers`` are ONNX Runtime's execution
    providers (default: the CPU) and ``cache_dir`` where the converted models are kept
    (default: the LipForensics export cache). ``landmarks`` names the landmark network
    (:data:`stream.faces.networks.LANDMARK_MODELS`: ``"full"``, the bundle's, or
    ``"lite"``).

    Making one turns off OpenCV's own worker threads for the process: the face work's warps
    and resizes are too small to share out, and handing them to OpenCV's pool cost 0.3-0.5
    ms of CPU per face per frame (docs/benchmarks.md); streams and batches already run in
    threads of their own.
    """

    def __init__(
        self,
        bundle: str | Path = BUNDLE_PATH,
        runtime: str = "openvino",
        providers: Sequence[str] = (),
        cache_dir: str | Path | None = None,
        landmarks: str = "full",
    ) -> None:
        if runtime not in RUNTIMES:
            raise LipForensicsError(
                f"unknown face model runtime {runtime!r} (expected {' or '.join(RUNTIMES)})"
            )
        cv2.setNumThreads(1)
        self.runtime = runtime
        self.detector: Model
        self.landmarks: Model
        networks = (DETECTOR, landmark_network(landmarks))
        contents = [(network_bytes(n, bundle), n) for n in networks]
        if runtime == "openvino":
            self.detector, self.landmarks = (OpenVinoModel(c, n) for c, n in contents)
            return
        if runtime == "litert":
            self.detector, self.landmarks = (TfliteModel(c, n) for c, n in contents)
            return
        if cache_dir is None:
            from engines.export import default_cache_dir

            cache_dir = default_cache_dir()
        self.detector, self.landmarks = (
            OnnxModel(cached_onnx(c, n, Path(cache_dir)), n, providers=providers)
            for c, n in contents
        )


class SharedFaceModels:
    """One :class:`FaceModels` for every stream of a pipeline (``landmarks``: the landmark
    network), made on the first call: making it compiles the networks (about a second with
    OpenVINO), so the pipeline asks for it once as it starts, in a landmark thread, and a
    stream's first frame finds it made. Safe to call from several threads."""

    def __init__(self, landmarks: str = "full") -> None:
        self.landmarks = landmarks
        self._models: FaceModels | None = None
        self._making = threading.Lock()

    def __call__(self) -> FaceModels:
        with self._making:
            if self._models is None:
                self._models = FaceModels(landmarks=self.landmarks)
            return self._models
