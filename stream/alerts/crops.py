"""The mouth crops of recent alert windows, kept in memory for people to look at.

When a face enters ALERT, the worker hands over the window that raised it; its normalised
float32 88 x 88 frames are stored back as uint8 grayscale (what the network saw), keyed by
the alert's id. The store is bounded by count and by bytes: the oldest alerts go first.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from engines.method import MEAN, STD

#: alerts whose crops are kept, and the most bytes their crops may take together.
KEEP_ALERTS = 32
KEEP_BYTES = 8 * 2**20


def to_uint8(frames: tuple[np.ndarray, ...] | np.ndarray) -> np.ndarray:
    """Normalised float32 crops (T, 88, 88) -> the uint8 grayscale the network saw."""
    pixels = (np.asarray(frames, dtype=np.float32) * np.float32(STD) + np.float32(MEAN)) * 255.0
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


class AlertCrops:
    """Alert id -> uint8 crops of the window that raised it; at most ``keep`` alerts and
    ``max_bytes`` of crops (the oldest are forgotten first)."""

    def __init__(self, keep: int = KEEP_ALERTS, max_bytes: int = KEEP_BYTES) -> None:
        self.keep, self.max_bytes = keep, max_bytes
        self._crops: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0

    def keep_window(self, alert_id: str, frames: tuple[np.ndarray, ...]) -> None:
        """Store the normalised ``frames`` of the window that raised alert ``alert_id``."""
        crops = to_uint8(frames)
        if crops.nbytes > self.max_bytes:
            return
        self._crops[alert_id] = crops
        self._bytes += crops.nbytes
        while len(self._crops) > self.keep or self._bytes > self.max_bytes:
            _, old = self._crops.popitem(last=False)
            self._bytes -= old.nbytes

    def get(self, alert_id: str) -> np.ndarray | None:
        """The uint8 (T, 88, 88) crops of alert ``alert_id``, or None if not (or no longer)
        kept."""
        return self._crops.get(alert_id)

    @property
    def nbytes(self) -> int:
        """Bytes of crops held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._crops)
