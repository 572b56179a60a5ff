"""Is the whole face in the picture? A face whose chin or cheek lies beyond the frame's
edge (a window that shows the lower part of a video off screen, a camera too close) gets
landmarks that the network's crops were never aligned with: on the demo's manipulated clip
cut at the chin, every window looked genuine (docs/calls.md)."""

from __future__ import annotations

import numpy as np

#: iBUG-68 points of the jaw line, chin included (0..16)
JAW = slice(0, 17)
#: how far (a share of the face's height) a jaw point may stray beyond the frame
MARGIN = 0.02


def cut_by_frame(points: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether the face of ``points`` (68 x 2 iBUG landmarks, pixels) reaches beyond the
    frame of ``shape`` ((height, width, ...)) by more than :data:`MARGIN` of its height."""
    height, width = shape[:2]
    face_height = float(points[:, 1].max() - points[:, 1].min())
    slack = MARGIN * face_height
    jaw = points[JAW]
    outside = (
        (jaw[:, 0] < -slack)
        | (jaw[:, 0] > width - 1 + slack)
        | (jaw[:, 1] < -slack)
        | (jaw[:, 1] > height - 1 + slack)
    )
    return bool(outside.any())
