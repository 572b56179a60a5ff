"""Images for people to look at: PNG bytes of pixels, and strips of mouth crops."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_bytes(pixels: np.ndarray) -> bytes:
    """``pixels`` (uint8, grayscale (H, W) or RGB (H, W, 3)) as a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def crop_strip(crops: np.ndarray) -> np.ndarray:
    """uint8 crops (T, H, W) side by side: one (H, T * W) image."""
    return np.concatenate(list(crops), axis=1)
