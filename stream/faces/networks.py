"""MediaPipe's face networks we run: names, inputs, and their bytes.

``stream/faces/assets/face_landmarker.task`` is a zip holding MediaPipe's networks
(Apache-2.0); :mod:`stream.faces.models` runs two of them, :mod:`stream.faces.tflite_onnx`
converts them to ONNX. ``stream/faces/assets/face_landmark_lite.tflite`` is MediaPipe's
earlier face mesh network (Apache-2.0): 192 x 192 input, 468 points (the bundle's 478
without the 10 iris points), under a third of the bundle's landmark network's CPU;
:data:`LANDMARK_MODELS` names the two.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from errors import LipForensicsError

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLE_PATH = ASSETS / "face_landmarker.task"


@dataclass(frozen=True, slots=True)
class Network:
    """One network: its file name, its square RGB input's side, how a uint8 pixel becomes
    an input value (``pixel * scale + offset``), and whether the file is inside the bundle
    (else it lies beside it)."""

    name: str
    size: int
    scale: float
    offset: float
    bundled: bool = True


DETECTOR = Network("face_detector.tflite", 128, 2.0 / 255.0, -1.0)
LANDMARKS = Network("face_landmarks_detector.tflite", 256, 1.0 / 255.0, 0.0)
#: MediaPipe's earlier face mesh network, a file of its own (not in the bundle)
LANDMARKS_LITE = Network("face_landmark_lite.tflite", 192, 1.0 / 255.0, 0.0, bundled=False)
#: the landmark networks a face stage can run, by the name settings give them
LANDMARK_MODELS = {"full": LANDMARKS, "lite": LANDMARKS_LITE}
#: the detector's input side (square, RGB)
DETECTOR_SIZE = DETECTOR.size


def bundled_model(name: str, bundle: str | Path = BUNDLE_PATH) -> bytes:
    """The bytes of network ``name`` inside a MediaPipe ``.task`` bundle."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            return archive.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise LipForensicsError(
            f"cannot read {name} from the face model {bundle}: {error}"
        ) from None


def network_bytes(network: Network, bundle: str | Path = BUNDLE_PATH) -> bytes:
    """The bytes of ``network``: from the bundle, or from its own file beside it."""
    if network.bundled:
        return bundled_model(network.name, bundle)
    path = Path(bundle).parent / network.name
    try:
        return path.read_bytes()
    except OSError as error:
        raise LipForensicsError(f"cannot read the face model {path}: {error}") from None


def landmark_network(name: str) -> Network:
    """The landmark network settings call ``name`` (:data:`LANDMARK_MODELS`)."""
    try:
        return LANDMARK_MODELS[name]
    except KeyError:
        raise LipForensicsError(
            f"unknown landmark model {name!r} (expected {' or '.join(LANDMARK_MODELS)})"
        ) from None
