"""The networks inside MediaPipe's face landmarker bundle: names, inputs, and their bytes.

``stream/faces/assets/face_landmarker.task`` is a zip holding MediaPipe's networks
(Apache-2.0); :mod:`stream.faces.models` runs two of them, :mod:`stream.faces.tflite_onnx`
converts them to ONNX.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

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
