"""The paper's robustness perturbations, applied to full RGB video frames before landmarks.

LipForensics (Sec. 4.3) used the DeeperForensics-1.0 distortions at five severities; we
implement them from their definitions (docs/calibration.md has the table):

============  =========================================================  ====================
name          what it does to each frame (uint8 RGB)                      levels 1..5
============  =========================================================  ====================
saturation    chroma (Cb, Cr of BT.601 YCbCr) scaled towards grey         0.4 0.3 0.2 0.1 0.0
contrast      every pixel value multiplied (darker, flatter)              0.85 .725 .6 .475 .35
block         N x (short side // 256, at least 1) grey 8x8 blocks         16 32 48 64 80
noise         Gaussian noise of this variance on studio-range YCbCr       .001 .002 .005 .01 .05
blur          Gaussian blur, this kernel size, sigma = size / 6           7 9 13 17 21
pixelation    down-scaled by this factor and back (bilinear)              2 3 4 5 6
compression   H.264 (libx264) re-encode at this CRF                       30 32 35 38 40
============  =========================================================  ====================

Random choices (block positions, noise) come from a generator seeded with ``seed`` and the
frame index, so a perturbed video is identical run after run, frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from engines.method import FPS

LEVELS = 5

# BT.601 full-range RGB <-> YCbCr, values in [0, 1]
_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
# studio range spans 219 (Y) and 224 (Cb, Cr) of 255 codes: the space noise is defined in
_STUDIO_SPAN = np.array([219.0, 224.0, 224.0]) / 255.0


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float YCbCr in [0, 1] (BT.601 full range, chroma centred at 0.5)."""
    ycbcr = (rgb.astype(np.float64) / 255.0) @ _RGB_TO_YCBCR.T
    ycbcr[..., 1:] += 0.5
    return ycbcr


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, rounded and clipped to uint8."""
    centred = ycbcr.copy()
    centred[..., 1:] -= 0.5
    rgb = centred @ _YCBCR_TO_RGB.T
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Scale the chroma by ``factor`` (0 = greyscale); luma stays."""
    ycbcr = rgb_to_ycbcr(rgb)
    ycbcr[..., 1:] = 0.5 + (ycbcr[..., 1:] - 0.5) * factor
    return ycbcr_to_rgb(ycbcr)


def contrast(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every pixel value by ``factor`` (truncated, as DeeperForensics does)."""
    return (rgb.astype(np.float32) * factor).astype(np.uint8)


def block_wise(rgb: np.ndarray, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Paste ``blocks`` x (short side // 256, at least 1) grey (128) 8x8 squares at random."""
    size = 8
    height, width = rgb.shape[:2]
    out = rgb.copy()
    count = blocks * max(1, min(height, width) // 256)
    rows = rng.integers(0, height - size, count, endpoint=True)
    cols = rng.integers(0, width - size, count, endpoint=True)
    for row, col in zip(rows, cols, strict=True):
        out[row : row + size, col : col + size] = 128
    return out


def gaussian_noise(rgb: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, ``variance``) to each channel of studio-range YCbCr scaled to [0, 1]
    (DeeperForensics' definition): in 8-bit luma a standard deviation of
    ``sqrt(variance) * 255 * 255 / 219`` levels (about 9.4 at the first severity)."""
    ycbcr = rgb_to_ycbcr(rgb)
    ycbcr += rng.normal(0.0, 1.0, ycbcr.shape) * (np.sqrt(variance) / _STUDIO_SPAN)
    return ycbcr_to_rgb(ycbcr)


def gaussian_blur(rgb: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian blur with a ``kernel`` x ``kernel`` window and sigma ``kernel / 6``."""
    import cv2

    return cv2.GaussianBlur(rgb, (kernel, kernel), kernel / 6.0)


def pixelation(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Down-scale by ``factor`` and back up, both bilinear (DeeperForensics' definition)."""
    import cv2

    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, width // factor), max(1, height // factor)))
    return cv2.resize(small, (width, height))


def h264(frames: Iterable[np.ndarray], crf: int, fps: int = FPS) -> Iterator[np.ndarray]:
    """Re-encode frames with libx264 at ``crf`` (yuv420p, default preset) and decode them
    again, streaming; frames keep their order, count and size (odd sizes are padded by
    repeating the edge for the encoder and cropped back)."""
    import av

    encoder, decoder = None, av.CodecContext.create("h264", "r")
    height = width = 0
    for index, rgb in enumerate(frames):
        if encoder is None:
            height, width = rgb.shape[:2]
            encoder = _h264_encoder(height + height % 2, width + width % 2, crf, fps)
        even = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
        frame.pts = index
        for decoded in _decode(decoder, encoder.encode(frame.reformat(format="yuv420p"))):
            yield decoded[:height, :width]
    if encoder is not None:
        for decoded in _decode(decoder, [*encoder.encode(None), None]):
            yield decoded[:height, :width]


def _h264_encoder(height: int, width: int, crf: int, fps: int) -> Any:
    import av

    encoder = av.CodecContext.create("libx264", "w")
    encoder.height, encoder.width = height, width
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps, 1)
    encoder.options = {"crf": str(crf)}
    encoder.open()
    return encoder


def _decode(decoder: Any, packets: list[Any]) -> Iterator[np.ndarray]:
    """Decode the encoder's packets (a ``None`` packet flushes the decoder)."""
    for packet in packets:
        for frame in decoder.decode(packet):
            yield frame.to_ndarray(format="rgb24")


@dataclass(frozen=True, slots=True)
class Perturbation:
    """One perturbation type: its per-frame function and its five severity parameters."""

    name: str
    levels: tuple[float, ...]
    apply_frame: Callable[..., np.ndarray] | None = None
    random: bool = False


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("saturation", (0.4, 0.3, 0.2, 0.1, 0.0), saturation),
        Perturbation("contrast", (0.85, 0.725, 0.6, 0.475, 0.35), contrast),
        Perturbation("block", (16, 32, 48, 64, 80), block_wise, random=True),
        Perturbation("noise", (0.001, 0.002, 0.005, 0.01, 0.05), gaussian_noise, random=True),
        Perturbation("blur", (7, 9, 13, 17, 21), gaussian_blur),
        Perturbation("pixelation", (2, 3, 4, 5, 6), pixelation),
        Perturbation("compression", (30, 32, 35, 38, 40)),
    )
}


def perturb(
    frames: Iterable[np.ndarray], name: str, level: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """Apply perturbation ``name`` at severity ``level`` (1..5) to uint8 RGB frames.

    Deterministic: the same frames, name, level and seed give the same output.
    """
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; expected one of {list(PERTURBATIONS)}")
    if not 1 <= level <= LEVELS:
        raise ValueError(f"perturbation level must be 1..{LEVELS}, got {level}")
    perturbation = PERTURBATIONS[name]
    parameter = perturbation.levels[level - 1]
    if perturbation.apply_frame is None:
        yield from h264(frames, int(parameter))
        return
    for index, rgb in enumerate(frames):
        if perturbation.random:
            rng = np.random.default_rng([seed, level, index])
            yield perturbation.apply_frame(rgb, parameter, rng)
        else:
            yield perturbation.apply_frame(rgb, parameter)
