"""What the detector last found in each region of one stream, reused while the region stays still.

The detector is a function of its 128 x 128 input: run again on the same picture it finds
the same faces. So each region's input is summarised by the means of its 8 x 8 pixel blocks
(16 x 16 blocks, each channel), and while no block's mean has moved by more than
:data:`CHANGE` gray levels since the detector last ran there, the detections it gave then
(frame pixels, after the region's own suppression) stand for this frame too. What they are
used for is decided afresh every frame (a detection over a face already tracked is skipped
then, taken once that face is gone), so only the network's call is saved.

A face the detector can find fills at least a fifth of its input's side (about 26 pixels,
:data:`stream.faces.detection.SMALLEST_SHARE`), so it covers at least four whole blocks,
and one coming into view moves their means by far more than :data:`CHANGE`; a codec's
flicker over a still background, averaged over a block's 64 pixels, stays below it (at
most 4 to 8 gray levels over the still background of ``bench/face_tracking.py``'s
one-face gallery in 60 frames, against 12 to 30 where the face talks).
The comparison is with the input of the detector's last run, not of the frame before, so a
slow change (a face sliding in, the light changing) adds up until the region is run again.
"""

from __future__ import annotations

import cv2
import numpy as np

#: a block mean (0..255) moving by more than this means the region changed
CHANGE = 10
#: blocks per side of the summary (the detector's 128 x 128 input: 8 x 8 pixels each)
BLOCKS = 16

#: one region's detections: (K, 16) x0, y0, x1, y1 and 6 keypoints, frame pixels; (K,) scores
Found = tuple[np.ndarray, np.ndarray]


def summary(image: np.ndarray) -> np.ndarray:
    """The int16 (16, 16, 3) block means of a uint8 (128, 128, 3) detector input."""
    return cv2.resize(image, (BLOCKS, BLOCKS), interpolation=cv2.INTER_AREA).astype(np.int16)


class TileMemory:
    """Per region (a :class:`stream.faces.detection.Tile`, or any hashable key): the
    summary of the input the detector last ran on, and what it found there."""

    def __init__(self) -> None:
        self._seen: dict[object, tuple[np.ndarray, Found]] = {}

    def clear(self) -> None:
        """Forget every region (a new frame size, a clock break)."""
        self._seen.clear()

    def recall(self, region: object, image: np.ndarray) -> Found | None:
        """The detections of ``region`` if its input ``image`` has not changed since the
        detector last ran on it; None if it has, or if it never ran there."""
        seen = self._seen.get(region)
        if seen is None:
            return None
        before, found = seen
        if np.abs(summary(image) - before).max() > CHANGE:
            return None
        return found

    def keep(self, region: object, image: np.ndarray, found: Found) -> None:
        """Remember what the detector found in ``region`` on input ``image``."""
        self._seen[region] = (summary(image), found)
