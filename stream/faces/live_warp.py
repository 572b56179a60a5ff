"""The live path's patch warp: OpenCV's bilinear ``warpAffine`` over just the source region
the 96 x 96 patch samples, in float32.

The offline crops (:func:`stream.faces.align.warp_patch`) reproduce the reference bit for
bit in float64 numpy, at about 0.9 ms per crop on our 2-core machine; this one takes about
0.25 ms and lands within 0.005 gray levels (mean absolute difference, at most 1 level on
any pixel) of it on the bundled clips (``bench/crops.py``; ``tests/test_live_crops.py``
holds it to the 0.5 bound of docs/crops.md). Same conventions: neighbours outside the frame
count as zeros, values truncated to uint8.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.method import CROP_SIZE

#: source pixels kept around the patch's corners (bilinear needs the next one; rounding)
_MARGIN = 2


def warp_patch_opencv(
    rgb: np.ndarray, matrix: np.ndarray, top: int, left: int, size: int = CROP_SIZE
) -> np.ndarray:
    """The ``size`` x ``size`` patch at (top, left) of the aligned frame, warped from ``rgb``
    by ``matrix`` (source frame -> aligned frame, 2 x 3): uint8 (size, size, 3)."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    corners = np.array([[left, top], [left + size - 1, top], [left, top + size - 1]], float)
    corners = np.vstack([corners, corners[1] + corners[2] - corners[0]])
    source = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(source.min(axis=0)).astype(int) - _MARGIN, 0)
    x1 = min(int(np.floor(source[:, 0].max())) + _MARGIN + 1, width)
    y1 = min(int(np.floor(source[:, 1].max())) + _MARGIN + 1, height)
    if x1 <= x0 or y1 <= y0:  # the patch lies wholly outside the frame
        return np.zeros((size, size, rgb.shape[2]), np.uint8)
    # patch pixel (col, row) -> region pixel: shift by the patch origin and the region's
    to_region = inverse.copy()
    to_region[:, 2] += inverse[:, 0] * left + inverse[:, 1] * top - (x0, y0)
    region = rgb[y0:y1, x0:x1].astype(np.float32)
    patch = cv2.warpAffine(
        region,
        to_region,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return patch.astype(np.uint8)
