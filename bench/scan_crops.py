"""The demo network's clip logits of an array of mouth crops, through the offline scan (as a
crops file): what ``bench.face_size`` and ``bench.frame_rate`` compare their variants by."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.detector import Detector


def clip_logits(detector: Detector, crops: np.ndarray, folder: Path) -> np.ndarray:
    """The logits of the consecutive 25-frame clips of ``crops`` (saved in ``folder``)."""
    path = folder / "crops.npy"
    np.save(path, crops)
    return np.asarray(detector.scan(path).clip_logits)
