"""Extra augmentation of the demo encoder's five-frame training windows, on the mouth crops.

What another person's camera, codec, lighting or frame rate does to genuine (and fake)
footage, applied to the uint8 96 x 96 crops of one window before the encoder's usual shift,
flip and brightness changes (:mod:`training.demo_encoder`):

``compression``  JPEG at quality 20-70, every frame of the window alike (codec blocking).
``scale``        down-scaled to 35-90 % and back (a low-resolution or distant face).
``repeats``      the window as a slower source shows at 25 fps: each frame is the latest
                 capture (at 15 fps, or a rate drawn from ``repeat_fps``), so at 15 fps
                 every 5 frames hold 2 repeats (a shared tab, a slow webcam); the same for
                 genuine and fake windows.
``lighting``     gamma 0.6-1.6 and a linear light gradient across the crop (side light).
``jitter``       every frame of the window moved by up to 1.5 px, scaled by up to 3 % and
                 brightened or darkened by up to 5 %, each frame by its own draw: the whole
                 crop shaking as it does with a shaking camera or landmarks tracked on a
                 small, low-resolution face (a manipulation's jitter moves the mouth alone).

Each is applied with its own probability; all draws come from the caller's generator, so
a seeded training run is reproducible. With every probability 0 nothing is drawn at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engines.method import FRAME_CONTEXT

#: the frame rate every window and clip is shown at
SHOWN_FPS = 25
#: 25 fps frames per 15 fps capture
CAPTURE_PERIOD = SHOWN_FPS / 15


@dataclass(frozen=True)
class Augmentation:
    """The probability of each augmentation (0: never)."""

    compression: float = 0.0
    scale: float = 0.0
    repeats: float = 0.0
    lighting: float = 0.0
    #: the lowest and highest source frame rates ``repeats`` draws from (equal: no draw)
    repeat_fps: tuple[float, float] = (15.0, 15.0)
    jitter: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any augmentation can happen."""
        return any((self.compression, self.scale, self.repeats, self.lighting, self.jitter))

    def window(self, crops: np.ndarray, centre: int, rng: np.random.Generator) -> np.ndarray:
        """The (5, H, W) uint8 window of ``crops`` around frame ``centre``, augmented."""
        frames = np.arange(centre - FRAME_CONTEXT, centre + FRAME_CONTEXT + 1)
        if rng.random() < self.repeats:
            period = SHOWN_FPS / _rate(self.repeat_fps, rng)
            shown = repeated_frames(frames, rng.uniform(0, period), period)
            frames = np.maximum(shown, frames[0])
        return self.camera(crops[frames], rng)

    def camera(self, crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``crops`` (a window's frames) as another camera shows them: ``jitter``
        drawn per frame, then one draw of ``scale``, ``lighting`` and ``compression`` for
        all of them."""
        if self.jitter and rng.random() < self.jitter:  # drawn only when it can happen
            count = len(crops)
            crops = jittered(
                crops,
                rng.uniform(-1.5, 1.5, size=(count, 2)),
                rng.uniform(0.97, 1.03, size=count),
                rng.uniform(0.95, 1.05, size=count),
            )
        if rng.random() < self.scale:
            crops = rescaled(crops, rng.uniform(0.35, 0.9))
        if rng.random() < self.lighting:
            crops = relit(crops, rng.uniform(0.6, 1.6), rng.uniform(-0.3, 0.3, size=2))
        if rng.random() < self.compression:
            crops = jpeg(crops, int(rng.integers(20, 71)))
        return crops


def _rate(fps: tuple[float, float], rng: np.random.Generator) -> float:
    """A source frame rate from the range ``fps`` (drawn only when it is a range, so that a
    fixed rate leaves the generator as it was)."""
    low, high = fps
    return low if low == high else float(rng.uniform(low, high))


def repeated_frames(frames: np.ndarray, phase: float, period: float = CAPTURE_PERIOD) -> np.ndarray:
    """For each 25 fps frame index, the frame a slower source shows there: the latest
    capture at or before it, captures falling at ``floor(k * period + phase)`` (``period``:
    25 fps frames per capture; by default a 15 fps source's 5 / 3)."""
    captures = np.floor(np.arange(-2, frames.max() / period + 2) * period + phase)
    latest = np.searchsorted(captures, frames, side="right") - 1
    return captures[latest].astype(int)


def slowed(
    crops: np.ndarray, runs: Sequence[tuple[int, int]], fps: float, phase: float
) -> np.ndarray:
    """A whole video's crops as a ``fps`` source would show them at 25 fps: in each run of
    consecutive frames, every frame replaced by the latest capture (captures at ``phase``,
    then every ``25 / fps`` frames)."""
    period = SHOWN_FPS / fps
    shown = np.arange(len(crops))
    for start, stop in runs:
        offsets = repeated_frames(np.arange(stop - start), phase, period)
        shown[start:stop] = start + np.maximum(offsets, 0)
    return crops[shown]


def jittered(
    window: np.ndarray, offsets: np.ndarray, scales: np.ndarray, gains: np.ndarray
) -> np.ndarray:
    """Each frame ``t`` of ``window`` scaled by ``scales[t]`` about the crop's centre, moved
    by ``offsets[t]`` (x, y) pixels and its gray levels multiplied by ``gains[t]`` (edges
    reflected)."""
    height, width = window.shape[1:]
    centre = ((width - 1) / 2, (height - 1) / 2)
    frames = []
    for frame, (dx, dy), scale, gain in zip(window, offsets, scales, gains, strict=True):
        matrix = cv2.getRotationMatrix2D(centre, 0.0, float(scale))
        matrix[:, 2] += (dx, dy)
        moved = cv2.warpAffine(
            frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        frames.append(np.clip(np.rint(moved * np.float32(gain)), 0, 255).astype(np.uint8))
    return np.stack(frames)


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
