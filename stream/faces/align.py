"""Pure geometry of the LipForensics mouth crop: smoothing, similarity alignment, patch cut.

No MediaPipe here, only numpy, so every step is unit-testable. The steps mirror the
authors' preprocessing (see ``docs/crops.md``):

1. (``stream/faces/smoothing.py``) smooth the 68 landmarks over 12 frames;
2. least-squares similarity transform from the smoothed stable points (iBUG 33, 36, 39, 42,
   45) to the mean face's (:func:`similarity_transform`);
3. transform the frame's own unsmoothed landmarks, centre = mean of points 48..67, shifted
   so that the 96 x 96 patch lies inside the 256 x 256 aligned frame (:func:`crop_box`);
4. bilinear warp of just that patch, ``[0, 1]`` values x 255 truncated to uint8
   (:func:`warp_patch`), then PIL's ``convert("L")`` luma (:func:`to_gray`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.method import CROP_SIZE

#: side of the aligned frame the mean face lives in.
ALIGNED_SIZE = 256
#: iBUG indices of the points the alignment is estimated from.
STABLE_POINTS = (33, 36, 39, 42, 45)
#: iBUG indices of the lips (outer 48..59, inner 60..67): the crop centre is their mean.
MOUTH_POINTS = slice(48, 68)

_MEAN_FACE_PATH = Path(__file__).resolve().parent / "assets" / "mean_face_68.npy"


def mean_face() -> np.ndarray:
    """The authors' mean face: 68 x 2 float64 (x, y) in the 256 x 256 aligned frame."""
    return np.load(_MEAN_FACE_PATH)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``source`` points onto
    ``target`` points (both (N, 2)), as a 2 x 3 matrix ``[[a, -b, tx], [b, a, ty]]``.

    Umeyama's closed form (PAMI 1991): SVD of the cross-covariance, no reflection. The
    operations run in the order scikit-image's ``SimilarityTransform`` (the reference's
    estimator) runs them, so the crops match the reference's bit for bit.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    if not singular[0] > 0:
        raise ValueError("source points coincide: no similarity transform")
    flip = np.linalg.det(covariance) < 0
    if singular[1] <= singular[0] * 2 * np.finfo(np.float64).eps:  # collinear points
        flip = np.linalg.det(u) * np.linalg.det(vt) < 0
    signs = np.array([1.0, -1.0 if flip else 1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = 1.0 / src_centred.var(axis=0).sum() * (singular @ signs)
    matrix = np.empty((2, 3))
    matrix[:, 2] = dst_mean - scale * (rotation @ src_mean)
    matrix[:, :2] = rotation * scale
    return matrix


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2 x 3 affine matrix."""
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def crop_box(
    mouth: np.ndarray, size: int = CROP_SIZE, frame: int = ALIGNED_SIZE
) -> tuple[int, int]:
    """Top-left (row, col) of the ``size`` x ``size`` patch around the mean of the aligned
    lip points ``mouth`` (N, 2): rows ``round(cy) - size/2 .. round(cy) + size/2 - 1``, the
    centre first shifted so the patch stays inside the ``frame`` x ``frame`` image.
    Rounding is Python's (half to even), as in the reference."""
    half = size // 2
    cx, cy = np.clip(np.mean(mouth, axis=0), half, frame - half)
    return round(float(cy)) - half, round(float(cx)) - half


def warp_patch(
    rgb: np.ndarray, matrix: np.ndarray, top: int, left: int, size: int = CROP_SIZE
) -> np.ndarray:
    """The ``size`` x ``size`` patch at (top, left) of ``rgb`` warped by ``matrix`` (source
    frame -> aligned frame): bilinear sampling of ``rgb / 255`` with zeros outside, then
    x 255 truncated to uint8, in the reference's order of operations. Only the patch is
    computed, not the whole 256 x 256 aligned frame."""
    rows, cols = np.mgrid[top : top + size, left : left + size].astype(np.float64)
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))
    x = inverse[0, 0] * cols + inverse[0, 1] * rows + inverse[0, 2]
    y = inverse[1, 0] * cols + inverse[1, 1] * rows + inverse[1, 2]
    x0, y0 = np.floor(x), np.floor(y)
    dx, dy = x - x0, y - y0
    height, width, channels = rgb.shape
    flat = np.ascontiguousarray(rgb).reshape(-1)
    corners = []  # flat index of channel 0 and "outside" mask of the four neighbours
    for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
        yy, xx = yy.astype(np.int64), xx.astype(np.int64)
        outside = (yy < 0) | (yy >= height) | (xx < 0) | (xx >= width)
        index = (np.clip(yy, 0, height - 1) * width + np.clip(xx, 0, width - 1)) * channels
        corners.append((index, outside))
    patch = np.empty((size, size, channels), dtype=np.uint8)
    for channel in range(channels):  # one (size, size) plane at a time: small, fast temporaries
        # x (1 / 255) as the reference's float conversion; per pixel, so gather first
        top_left, top_right, bottom_left, bottom_right = (
            np.where(outside, 0.0, flat[index + channel] * (1.0 / 255))
            for index, outside in corners
        )
        top_row = (1 - dx) * top_left + dx * top_right
        bottom_row = (1 - dx) * bottom_left + dx * bottom_right
        patch[..., channel] = (((1 - dy) * top_row + dy * bottom_row) * 255).astype(np.uint8)
    return patch


#: PIL's fixed-point luma weights (/ 65536) and its rounding term
_LUMA = np.array([19595, 38470, 7471], dtype=np.float32)
_HALF = np.float32(0x8000)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma exactly as PIL's ``Image.convert("L")``: fixed-point weights
    19595, 38470, 7471 (/ 65536), rounded.

    Computed in float32, bit for bit the integer formula: every product, partial sum and
    the rounding term is an integer below 2**24 (at most 255 x 65536 + 32768), which
    float32 holds exactly, and the division by 65536 is exact; about a third of the
    integer version's time."""
    luma = np.asarray(rgb, dtype=np.float32) @ _LUMA
    luma += _HALF
    luma *= np.float32(1.0 / 65536)
    return luma.astype(np.uint8)  # non-negative: truncation is the integer shift


#: (rgb, matrix, top, left) -> uint8 (96, 96, 3): :func:`warp_patch` or a faster stand-in
Warp = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]


def mouth_crop(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    smoothed: np.ndarray,
    reference: np.ndarray,
    warp: Warp = warp_patch,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """One frame's 96 x 96 grayscale mouth crop.

    Args:
        rgb: the frame, uint8 (H, W, 3).
        landmarks: the frame's own 68 iBUG points (68, 2), pixels.
        smoothed: the smoothed points the alignment is estimated from (68, 2).
        reference: the mean face (68, 2), see :func:`mean_face`.
        warp: the patch warp; the default is the reference's, bit for bit (the live face
            stage passes :func:`stream.faces.live_warp.warp_patch_opencv`).

    Returns:
        ``(crop, matrix, (top, left))``: uint8 (96, 96), the 2 x 3 source -> aligned
        transform, and where the crop sits in the 256 x 256 aligned frame.
    """
    stable = list(STABLE_POINTS)
    matrix = similarity_transform(smoothed[stable], reference[stable])
    top, left = crop_box(apply_transform(matrix, landmarks[MOUTH_POINTS]))
    return to_gray(warp(rgb, matrix, top, left)), matrix, (top, left)
