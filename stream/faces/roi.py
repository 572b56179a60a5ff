"""The landmark network's region of interest: a rotated square around a face, MediaPipe's way.

From a detection: the box's centre, the rotation that levels the eyes (keypoints 0 and 1),
the side 1.5 x the box's longer side. From the landmarks of the frame before (tracking):
the centre of their bounding box, the rotation that levels mesh points 33 and 263 (the
outer eye corners), the side 1.5 x the box's longer side (the same for both landmark
networks of :mod:`stream.faces.networks`). The square is warped to the network's square
input (256 x 256, or 192 x 192 for the lite network; bilinear on uint8, edges replicated),
as MediaPipe's image-to-tensor step does with the perspective transform of its corners: for
a rotated square that transform is a rotation and a scale, so an affine warp does it (about
half the CPU). The network's points (input pixels) are mapped back by the same rotation and
scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: the region is this many times the face box's longer side
SCALE = 1.5
#: mesh points whose line sets the rotation: outer corners of the right and left eye
EYE_LINE = (33, 263)


@dataclass(frozen=True, slots=True)
class Roi:
    """A square region: centre (x, y) and side in frame pixels, rotation in radians (the
    angle that turns the face upright, MediaPipe's convention)."""

    cx: float
    cy: float
    side: float
    rotation: float

    def scaled(self, sx: float, sy: float) -> Roi:
        """The same region in a frame scaled by ``sx`` across and ``sy`` down (a source
        that changed its resolution)."""
        return Roi(self.cx * sx, self.cy * sy, self.side * math.sqrt(sx * sy), self.rotation)

    def matrix(self, size: int) -> np.ndarray:
        """The 2 x 3 affine transform frame -> ``size`` x ``size`` input: the inverse of
        :meth:`project` (the square's corners land on the input's corners, as MediaPipe's
        perspective transform of them puts them)."""
        scale = size / self.side
        cos, sin = math.cos(self.rotation) * scale, math.sin(self.rotation) * scale
        half = size / 2
        return np.array(
            [
                [cos, sin, half - cos * self.cx - sin * self.cy],
                [-sin, cos, half + sin * self.cx - cos * self.cy],
            ]
        )

    def project(self, points: np.ndarray, size: int) -> np.ndarray:
        """Network points (N, >= 2) in pixels of a ``size`` x ``size`` input -> (N, 2)
        frame pixels."""
        relative = points[:, :2] / size - 0.5
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        x = (cos * relative[:, 0] - sin * relative[:, 1]) * self.side + self.cx
        y = (sin * relative[:, 0] + cos * relative[:, 1]) * self.side + self.cy
        return np.stack([x, y], axis=1)


def _rotation(start: np.ndarray, end: np.ndarray) -> float:
    """MediaPipe's angle that levels the line start -> end, in (-pi, pi]."""
    angle = -math.atan2(-(end[1] - start[1]), end[0] - start[0])
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def roi_from_box(box: np.ndarray, start: np.ndarray, end: np.ndarray) -> Roi:
    """The region around a box (x0, y0, x1, y1) turned by the line start -> end."""
    side = SCALE * max(box[2] - box[0], box[3] - box[1])
    centre = (box[:2] + box[2:]) / 2
    return Roi(float(centre[0]), float(centre[1]), float(side), _rotation(start, end))


def roi_from_mesh(mesh: np.ndarray) -> Roi:
    """The next frame's region from this frame's (478 or 468, 2) mesh, frame pixels."""
    low, high = mesh.min(axis=0), mesh.max(axis=0)
    return roi_from_box(np.concatenate([low, high]), mesh[EYE_LINE[0]], mesh[EYE_LINE[1]])


def network_inputs(jobs: list[tuple[np.ndarray, Roi]], size: int) -> np.ndarray:
    """A landmark network's uint8 (N, size, size, 3) inputs for N (RGB frame, region)
    pairs, each warped straight into its place in the batch."""
    batch = np.empty((len(jobs), size, size, 3), np.uint8)
    for out, (rgb, roi) in zip(batch, jobs, strict=True):
        cv2.warpAffine(
            rgb,
            roi.matrix(size),
            (size, size),
            dst=out,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return batch
