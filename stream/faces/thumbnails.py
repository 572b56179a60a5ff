"""A small live picture of each face, so a person can tell which participant of a call a
verdict is about (the dashboard's and ``/publish``'s face cards show it).

The worker keeps one per face, refreshed with every window from the window's last frame:
the face's box, widened so that hair and shoulders show, scaled to :data:`HEIGHT` pixels
high. The store is bounded by count (oldest first) and forgets a face that left.
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

#: pixels high of a thumbnail, and how much wider than the face's box it is cut (each side)
HEIGHT = 96
MARGIN = 0.35
#: faces whose thumbnails are kept (all streams together)
KEEP_FACES = 256


def face_thumbnail(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The RGB picture of the face at normalised ``box`` in ``image``, :data:`HEIGHT` high."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    grow_x, grow_y = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
    left, right = int(max(0.0, x0 - grow_x) * width), int(min(1.0, x1 + grow_x) * width)
    top, bottom = int(max(0.0, y0 - grow_y) * height), int(min(1.0, y1 + grow_y) * height)
    patch = image[top : max(bottom, top + 1), left : max(right, left + 1)]
    size = (max(1, round(patch.shape[1] * HEIGHT / patch.shape[0])), HEIGHT)
    return cv2.resize(patch, size, interpolation=cv2.INTER_AREA)


class FaceThumbnails:
    """(stream, face) -> the face's latest thumbnail (RGB uint8); at most ``keep`` faces."""

    def __init__(self, keep: int = KEEP_FACES) -> None:
        self.keep = keep
        self._pictures: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def update(self, stream: str, face: int, picture: np.ndarray) -> None:
        """The face's newest picture (it becomes the most recent face)."""
        self._pictures[(stream, face)] = picture
        self._pictures.move_to_end((stream, face))
        while len(self._pictures) > self.keep:
            self._pictures.popitem(last=False)

    def get(self, stream: str, face: int) -> np.ndarray | None:
        """The face's latest picture, or None (never seen, left, or no longer kept)."""
        return self._pictures.get((stream, face))

    def forget(self, stream: str, face: int) -> None:
        """The face left: drop its picture."""
        self._pictures.pop((stream, face), None)

    def __len__(self) -> int:
        return len(self._pictures)
