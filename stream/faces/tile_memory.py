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

Blocks around a face already tracked are left out of the comparison (``faces`` of
:meth:`TileMemory.recall`: the square its landmark network looks at, 1.5 times the face's
longer side): a tracked face talking changes them on every frame, and what the detector
could find there is that face, whose detection is skipped anyway (its centre lies in its
box). A new face beside it still changes blocks outside the square: its centre lies outside
the tracked face's box, so at least half of it lies outside. So a webcam's one face or a
call gallery's talking faces over a still background cost no detector calls while they
are followed; once a face is lost its blocks count again.

A detection in which the landmark network finds no face (a poster, a pattern on a wall) is
dropped from what every region remembers (:meth:`TileMemory.reject`): run again on the same
picture, the landmark network would reject it again, so it is tried anew only once its
region has changed and the detector has looked there again.
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
#: a tracked face's blocks are those of the square this many times its box's longer side
FACE_SCALE = 1.5
#: a remembered detection within this many pixels (each box side) of a rejected one is it
SAME_DETECTION = 0.5


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

    def recall(
        self, region: object, image: np.ndarray, faces: np.ndarray | None = None
    ) -> Found | None:
        """The detections of ``region`` if its input ``image`` has not changed since the
        detector last ran on it, outside the blocks of tracked ``faces`` (a (16, 16) bool
        mask, :func:`face_blocks`); None if it has, or if it never ran there."""
        seen = self._seen.get(region)
        if seen is None:
            return None
        before, found = seen
        moved = np.abs(summary(image) - before).max(axis=2) > CHANGE
        if faces is not None:
            moved &= ~faces
        return None if moved.any() else found

    def keep(self, region: object, image: np.ndarray, found: Found) -> None:
        """Remember what the detector found in ``region`` on input ``image``."""
        self._seen[region] = (summary(image), found)

    def reject(self, box: np.ndarray) -> None:
        """Forget the detection at ``box`` (x0, y0, x1, y1, frame pixels; within
        :data:`SAME_DETECTION` pixels) in every region: it held no face."""
        for region, (before, (values, scores)) in self._seen.items():
            same = np.abs(values[:, :4] - box).max(axis=1, initial=0.0) <= SAME_DETECTION
            if same.any():
                self._seen[region] = (before, (values[~same], scores[~same]))


def face_blocks(x: float, y: float, side: float, boxes: list[np.ndarray]) -> np.ndarray:
    """The (16, 16) bool mask of a region (top-left ``x``, ``y`` and ``side``, frame
    pixels) whose blocks touch the square around any tracked face's box (x0, y0, x1, y1,
    frame pixels): :data:`FACE_SCALE` times its longer side, on its centre."""
    mask = np.zeros((BLOCKS, BLOCKS), bool)
    block = side / BLOCKS
    for box in boxes:
        half = FACE_SCALE * max(box[2] - box[0], box[3] - box[1]) / 2
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if cx + half < x or cx - half >= x + side or cy + half < y or cy - half >= y + side:
            continue  # the square misses the region
        cols = np.clip(np.floor([(cx - half - x) / block, (cx + half - x) / block]), 0, BLOCKS - 1)
        rows = np.clip(np.floor([(cy - half - y) / block, (cy + half - y) / block]), 0, BLOCKS - 1)
        mask[int(rows[0]) : int(rows[1]) + 1, int(cols[0]) : int(cols[1]) + 1] = True
    return mask
