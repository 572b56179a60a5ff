"""MediaPipe's face detector and face landmark networks, run as plain models.

Both come from the bundled ``face_landmarker.task`` (a zip; the networks are MediaPipe's,
Apache-2.0): ``face_detector.tflite`` (BlazeFace short range, 128 x 128 RGB in [-1, 1] ->
896 anchors x 16 box and keypoint values, 896 scores) and
``face_landmarks_detector.tflite`` (256 x 256 RGB in [0, 1] -> 478 x 3 points in input
pixels, a face-presence logit). The blendshapes network in the bundle is not run.

The runtime is LiteRT (``ai-edge-litert``, XNNPACK) on one thread per model: timed alone on
our 2-core machine it ran the landmark network in about 4.7 ms per face, as fast as ONNX
Runtime or OpenVINO (docs/benchmarks.md). A batch of N inputs is one call (the input is
resized to N when N changes).
"""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np

from errors import LipForensicsError

BUNDLE_PATH = Path(__file__).resolve().parent / "assets" / "face_landmarker.task"
DETECTOR_NAME = "face_detector.tflite"
LANDMARKS_NAME = "face_landmarks_detector.tflite"
#: input sides of the two networks (square, RGB)
DETECTOR_SIZE = 128
LANDMARKS_SIZE = 256


def bundled_model(name: str, bundle: str | Path = BUNDLE_PATH) -> bytes:
    """The bytes of network ``name`` inside a MediaPipe ``.task`` bundle."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            return archive.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise LipForensicsError(
            f"cannot read {name} from the face model {bundle}: {error}"
        ) from None


class TfliteModel:
    """One TFLite network on LiteRT's CPU interpreter (XNNPACK), called with batches.

    :meth:`run` is safe to call from several threads (one call at a time).
    """

    def __init__(self, content: bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=content, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._batch = 0
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for a float32 (N, H, W, 3) batch, as the network shapes
        them (a network with fixed reshapes may gather the batch's items otherwise than
        item by item: see :func:`stream.faces.detection.detect`)."""
        count = len(batch)
        with self._lock:
            interpreter = self._interpreter
            if count != self._batch:
                interpreter.resize_tensor_input(self._input["index"], [count, *batch.shape[1:]])
                interpreter.allocate_tensors()
                self._batch = count
            interpreter.set_tensor(self._input["index"], np.ascontiguousarray(batch, np.float32))
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in self._outputs]


class FaceModels:
    """The two networks of one bundle: :attr:`detector` and :attr:`landmarks`.

    One instance can serve every stream of a process (the pipeline's landmark threads take
    turns per call); see :class:`stream.faces.engine.FaceEngine`.
    """

    def __init__(self, bundle: str | Path = BUNDLE_PATH) -> None:
        self.detector = TfliteModel(bundled_model(DETECTOR_NAME, bundle))
        self.landmarks = TfliteModel(bundled_model(LANDMARKS_NAME, bundle))
