"""MediaPipe's face detector and face landmark networks, run as plain models.

Both come from the bundled ``face_landmarker.task`` (a zip; the networks are MediaPipe's,
Apache-2.0): ``face_detector.tflite`` (BlazeFace short range, 128 x 128 RGB in [-1, 1] ->
896 anchors x 16 box and keypoint values, 896 scores) and
``face_landmarks_detector.tflite`` (256 x 256 RGB in [0, 1] -> 478 x 3 points in input
pixels, a face-presence logit). The blendshapes network in the bundle is not run.

A model is called with uint8 RGB images and scales them into its input itself (one pass,
written straight into the runtime's input buffer), so callers never build float copies.

The runtime is LiteRT (``ai-edge-litert``, XNNPACK) on one thread per model: timed alone on
our 2-core machine it ran the landmark network in about 4.7 ms per face, as fast as ONNX
Runtime or OpenVINO (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from errors import LipForensicsError

BUNDLE_PATH = Path(__file__).resolve().parent / "assets" / "face_landmarker.task"


@dataclass(frozen=True, slots=True)
class Network:
    """One network of the bundle: its file name, its square RGB input's side, and how a
    uint8 pixel becomes an input value (``pixel * scale + offset``)."""

    name: str
    size: int
    scale: float
    offset: float


DETECTOR = Network("face_detector.tflite", 128, 2.0 / 255.0, -1.0)
LANDMARKS = Network("face_landmarks_detector.tflite", 256, 1.0 / 255.0, 0.0)
#: input sides of the two networks (square, RGB)
DETECTOR_SIZE = DETECTOR.size
LANDMARKS_SIZE = LANDMARKS.size


def bundled_model(name: str, bundle: str | Path = BUNDLE_PATH) -> bytes:
    """The bytes of network ``name`` inside a MediaPipe ``.task`` bundle."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            return archive.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise LipForensicsError(
            f"cannot read {name} from the face model {bundle}: {error}"
        ) from None


def scale_into(images: np.ndarray, network: Network, out: np.ndarray) -> None:
    """Write uint8 ``images`` as the network's float32 input values into ``out``."""
    np.multiply(images, np.float32(network.scale), out=out, casting="unsafe")
    if network.offset:
        out += np.float32(network.offset)


class TfliteModel:
    """One TFLite network on LiteRT's CPU interpreter (XNNPACK), one image per invoke.

    A batch is run item by item: on our 2-core machine XNNPACK took about 10% more CPU per
    face for the landmark network batched 4 or 8 than one face at a time (docs/benchmarks.md),
    and a batch-1 interpreter never reallocates. :meth:`run` is safe to call from several
    threads (one call at a time).
    """

    def __init__(self, content: bytes, network: Network, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.network = network
        self._interpreter = Interpreter(model_content=content, num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self._lock = threading.Lock()

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for a uint8 (N, H, W, 3) batch of RGB images (N >= 1):
        each output (N, ...) with item i's values at index i."""
        with self._lock:
            interpreter = self._interpreter
            found: list[list[np.ndarray]] = [[] for _ in self._outputs]
            for image in images:
                scale_into(image[None], self.network, interpreter.tensor(self._input)())
                interpreter.invoke()
                for values, index in zip(found, self._outputs, strict=True):
                    values.append(interpreter.get_tensor(index)[0])
            return [np.stack(values) for values in found]


class FaceModels:
    """The two networks of one bundle: :attr:`detector` and :attr:`landmarks`.

    One instance can serve every stream of a process (the pipeline's landmark threads take
    turns per call); see :func:`stream.faces.engine.track`.
    """

    def __init__(self, bundle: str | Path = BUNDLE_PATH) -> None:
        self.detector = TfliteModel(bundled_model(DETECTOR.name, bundle), DETECTOR)
        self.landmarks = TfliteModel(bundled_model(LANDMARKS.name, bundle), LANDMARKS)
