"""Synthetic mouth manipulations of real video, in video-frame space.

They attack what LipForensics looks at: the mouth's appearance and motion over time. Each
one pastes a mouth region into every frame of a clip with a feathered mask, taken from a
*source* frame that is aligned onto the target frame by a similarity transform estimated
from rigid face points (nose and eye corners), so the pasted mouth sits where the real one
was:

``freeze``   the mouth of one frame in every frame: the face moves, the mouth does not.
``shift``    the mouth from another moment of the same clip (1-3 s away): lip motion out
             of step with the rest of the face.
``stutter``  the mouth updated only every few frames: lip motion at a lower frame rate.
``flicker``  each frame's own mouth with per-frame jitter of position, scale and brightness.
``swap``     the mouth of another clip (a *donor*) blended in, colour-matched.

The results are ordinary frames: write them as a video and they go through the real
pipeline (MediaPipe landmarks -> aligned crops) like any other input. Everything is
deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from engines.method import FPS
from stream.faces.align import similarity_transform

#: iBUG points that do not move with speech: nose bridge and base, eye corners.
RIGID_POINTS = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)
#: iBUG outer lip contour.
OUTER_LIPS = slice(48, 60)
#: mask ellipse semi-axes as multiples of the mouth width (corner to corner).
MASK_AXES = (0.65, 0.45)
#: feathering of the mask edge, Gaussian sigma as a multiple of the mouth width.
MASK_FEATHER = 0.08


@dataclass(frozen=True)
class Footage:
    """Frames with their per-frame 68-point iBUG landmarks (pixels, (x, y)).

    Attributes:
        frames: uint8 (T, H, W, 3) RGB.
        landmarks: float (T, 68, 2).
    """

    frames: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.landmarks.shape != (len(self.frames), 68, 2):
            raise ValueError(
                f"expected frames (T, H, W, 3) and landmarks (T, 68, 2), got "
                f"{self.frames.shape} and {self.landmarks.shape}"
            )


def mouth_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] over the mouth region of one frame.

    An ellipse centred on the outer lips, sized by the mouth width, tilted with the line
    between the mouth corners, feathered with a Gaussian blur.
    """
    lips = landmarks[OUTER_LIPS]
    left, right = landmarks[48], landmarks[54]
    mouth_width = float(np.linalg.norm(right - left))
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    centre = lips.mean(axis=0)
    mask = np.zeros((height, width), np.float32)
    axes = (round(MASK_AXES[0] * mouth_width), round(MASK_AXES[1] * mouth_width))
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1.0, -1)
    sigma = MASK_FEATHER * mouth_width
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)


def paste_mouth(
    target: np.ndarray,
    target_landmarks: np.ndarray,
    source: np.ndarray,
    source_landmarks: np.ndarray,
    extra: np.ndarray | None = None,
    gain: float = 1.0,
    offset: np.ndarray | float = 0.0,
) -> np.ndarray:
    """``target`` with the mouth region of ``source`` blended in.

    The source frame is aligned onto the target by the similarity transform between their
    rigid points, optionally followed by ``extra`` (a 2 x 3 affine in target pixels, for
    jitter); the pasted pixels become ``gain * pixel + offset`` (brightness, colour).
    Returns a new uint8 frame.
    """
    rigid = list(RIGID_POINTS)
    matrix = similarity_transform(source_landmarks[rigid], target_landmarks[rigid])
    if extra is not None:
        matrix = _compose(extra, matrix)
    height, width = target.shape[:2]
    warped = cv2.warpAffine(
        source, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)
    mask = mouth_mask(target_landmarks, height, width)[..., None]
    blended = mask * (warped * gain + offset) + (1.0 - mask) * target.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2 x 3 affine that applies ``inner`` then ``outer``."""
    full = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return full[:2]


def _colour_offset(source: Footage, target: Footage) -> np.ndarray:
    """Per-channel offset that moves ``source``'s mean mouth-region colour onto ``target``'s
    (over the whole clips; keeps a donor's lighting from giving the swap away trivially)."""

    def mouth_mean(footage: Footage) -> np.ndarray:
        height, width = footage.frames.shape[1:3]
        sums, weight = np.zeros(3), 0.0
        for frame, points in zip(footage.frames, footage.landmarks, strict=True):
            mask = mouth_mask(points, height, width)
            sums += (frame * mask[..., None]).reshape(-1, 3).sum(axis=0)
            weight += float(mask.sum())
        return sums / weight

    return (mouth_mean(target) - mouth_mean(source)).astype(np.float32)


def _paste_all(
    footage: Footage,
    donor: Footage,
    source_index: Callable[[int], int],
    jitter: Callable[[int], tuple[np.ndarray | None, float]] = lambda _t: (None, 1.0),
    offset: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Every frame t of ``footage`` with the mouth of ``donor`` frame ``source_index(t)``
    (``jitter(t)`` gives an extra affine and a gain, ``offset`` a colour shift)."""
    out = np.empty_like(footage.frames)
    for t, (frame, points) in enumerate(zip(footage.frames, footage.landmarks, strict=True)):
        s = source_index(t)
        extra, gain = jitter(t)
        out[t] = paste_mouth(
            frame, points, donor.frames[s], donor.landmarks[s], extra, gain, offset
        )
    return out


def freeze(footage: Footage, rng: np.random.Generator) -> np.ndarray:
    """The mouth of one randomly chosen frame, pasted into every frame."""
    anchor = int(rng.integers(len(footage.frames)))
    return _paste_all(footage, footage, lambda _t: anchor)


def shift(footage: Footage, rng: np.random.Generator) -> np.ndarray:
    """The mouth from 1-3 s later (wrapping around the clip's end): lips out of step."""
    count = len(footage.frames)
    offset = int(rng.integers(25, 76)) % count or 1
    return _paste_all(footage, footage, lambda t: (t + offset) % count)


def stutter(footage: Footage, rng: np.random.Generator) -> np.ndarray:
    """The mouth refreshed every 3-5 frames and held in between."""
    step = int(rng.integers(3, 6))
    return _paste_all(footage, footage, lambda t: t - t % step)


def flicker(footage: Footage, rng: np.random.Generator) -> np.ndarray:
    """Each frame's own mouth, re-pasted with random per-frame offset (up to 2.5 px),
    scale (up to 5 %) and brightness (up to 12 %)."""
    count = len(footage.frames)
    offsets = rng.uniform(-2.5, 2.5, size=(count, 2))
    scales = rng.uniform(0.95, 1.05, size=count)
    gains = rng.uniform(0.88, 1.12, size=count)

    def jitter(t: int) -> tuple[np.ndarray, float]:
        centre = footage.landmarks[t, OUTER_LIPS].mean(axis=0)
        extra = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, scales[t])
        extra[:, 2] += offsets[t]
        return extra, float(gains[t])

    return _paste_all(footage, footage, lambda t: t, jitter)


def swap(footage: Footage, rng: np.random.Generator, donor: Footage) -> np.ndarray:
    """The mouth of ``donor`` (another clip), colour-matched, from a random starting frame."""
    start = int(rng.integers(len(donor.frames)))
    offset = _colour_offset(donor, footage)
    return _paste_all(footage, donor, lambda t: (start + t) % len(donor.frames), offset=offset)


#: manipulation name -> function; ``swap`` alone needs a donor.
MANIPULATIONS: dict[str, Callable[..., np.ndarray]] = {
    "freeze": freeze,
    "shift": shift,
    "stutter": stutter,
    "flicker": flicker,
    "swap": swap,
}


def manipulate(
    footage: Footage, kind: str, seed: int = 0, donor: Footage | None = None
) -> np.ndarray:
    """Apply the manipulation ``kind`` (a key of :data:`MANIPULATIONS`) to ``footage``.

    Returns new uint8 frames of the same shape. ``donor`` is required for ``swap`` only.
    Raises ``ValueError`` for an unknown kind or a missing donor.
    """
    if kind not in MANIPULATIONS:
        raise ValueError(f"unknown manipulation {kind!r}; expected one of {sorted(MANIPULATIONS)}")
    rng = np.random.default_rng(seed)
    if kind == "swap":
        if donor is None:
            raise ValueError("the swap manipulation needs a donor clip")
        return swap(footage, rng, donor)
    return MANIPULATIONS[kind](footage, rng)


def write_video(path: str | Path, frames: np.ndarray, fps: int = FPS, crf: int = 18) -> None:
    """Write uint8 (T, H, W, 3) RGB frames as an H.264 MP4 (yuv420p, constant rate factor
    ``crf``), the way the bundled clips are stored."""
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb[: stream.height, : stream.width], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
