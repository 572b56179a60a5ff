"""Extra augmentation of the demo encoder's five-frame training windows, on the mouth crops.

What another person's camera, codec, lighting or frame rate does to genuine (and fake)
footage, applied to the uint8 96 x 96 crops of one window before the encoder's usual shift,
flip and brightness changes (:mod:`training.demo_encoder`):

``compression``  JPEG at quality 20-70, every frame of the window alike (codec blocking).
``scale``        down-scaled to 35-90 % and back (a low-resolution or distant face).
``repeats``      the window as a 15 fps source shows at 25 fps: each frame is the latest
                 15 fps capture, so every 5 frames hold 2 repeats (a shared tab, a slow
                 webcam); the same for genuine and fake windows.
``lighting``     gamma 0.6-1.6 and a linear light gradient across the crop (side light).

Each is applied with its own probability; all draws come from the caller's generator, so
a seeded training run is reproducible. With every probability 0 nothing is drawn at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.method import FRAME_CONTEXT

#: 25 fps frames per 15 fps capture
CAPTURE_PERIOD = 25 / 15


@dataclass(frozen=True)
class Augmentation:
    """The probability of each augmentation (0: never)."""

    compression: float = 0.0
    scale: float = 0.0
    repeats: float = 0.0
    lighting: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any augmentation can happen."""
        return any((self.compression, self.scale, self.repeats, self.lighting))

    def window(self, crops: np.ndarray, centre: int, rng: np.random.Generator) -> np.ndarray:
        """The (5, H, W) uint8 window of ``crops`` around frame ``centre``, augmented."""
        frames = np.arange(centre - FRAME_CONTEXT, centre + FRAME_CONTEXT + 1)
        if rng.random() < self.repeats:
            frames = np.maximum(repeated_frames(frames, rng.uniform(0, CAPTURE_PERIOD)), frames[0])
        window = crops[frames]
        if rng.random() < self.scale:
            window = rescaled(window, rng.uniform(0.35, 0.9))
        if rng.random() < self.lighting:
            window = relit(window, rng.uniform(0.6, 1.6), rng.uniform(-0.3, 0.3, size=2))
        if rng.random() < self.compression:
            window = jpeg(window, int(rng.integers(20, 71)))
        return window


def repeated_frames(frames: np.ndarray, phase: float) -> np.ndarray:
    """For each 25 fps frame index, the frame a 15 fps source shows there: the latest
    capture at or before it, captures falling at ``floor(k * 5 / 3 + phase)``."""
    captures = np.floor(np.arange(-2, frames.max() / CAPTURE_PERIOD + 2) * CAPTURE_PERIOD + phase)
    latest = np.searchsorted(captures, frames, side="right") - 1
    return captures[latest].astype(int)


def rescaled(window: np.ndarray, factor: float) -> np.ndarray:
    """Each frame down-scaled by ``factor`` (area) and back up (bilinear)."""
    height, width = window.shape[1:]
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.stack(
        [
            cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (width, height))
            for f in window
        ]
    )


def relit(window: np.ndarray, gamma: float, gradient: np.ndarray) -> np.ndarray:
    """Gray levels raised to ``gamma`` and multiplied by ``1 + gx * x + gy * y`` (x, y from
    -0.5 to 0.5 across the crop)."""
    height, width = window.shape[1:]
    y, x = np.mgrid[-0.5 : 0.5 : height * 1j, -0.5 : 0.5 : width * 1j]
    light = 1 + gradient[0] * x + gradient[1] * y
    levels = (window.astype(np.float32) / 255) ** gamma * light
    return np.clip(np.rint(levels * 255), 0, 255).astype(np.uint8)


def jpeg(window: np.ndarray, quality: int) -> np.ndarray:
    """Each frame through JPEG at ``quality``."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    return np.stack(
        [cv2.imdecode(cv2.imencode(".jpg", f, params)[1], cv2.IMREAD_GRAYSCALE) for f in window]
    )
