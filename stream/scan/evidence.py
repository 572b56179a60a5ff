"""What a scan report shows of the most suspicious clip: its 25 mouth crops and a few of
its video frames with the mouth boxed.

The scan itself keeps no crops (its memory does not grow with the input), so the evidence
is read again, only as far as the clip's end: the crops through the same reader and
smoothing as the scan (same crops, bit for bit), the frames through the same 25 fps clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.method import CLIP_FRAMES, FPS
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

#: iBUG-68 indices of the mouth (outer and inner lip).
MOUTH = slice(48, 68)
#: frames of the clip shown with the mouth box (first, middle, last).
SHOWN_FRAMES = (0, CLIP_FRAMES // 2, CLIP_FRAMES - 1)
#: tolerance when matching a crop's time to a frame's (seconds).
_SAME_TIME = 1e-6


@dataclass(frozen=True)
class FrameWithMouth:
    """A video frame (RGB uint8) at ``pts`` seconds and its mouth box (left, top, right,
    bottom) in its pixels."""

    pts: float
    image: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class ClipEvidence:
    """The most suspicious clip: its start, uint8 (25, 96, 96) crops, and a few frames."""

    start: float
    crops: np.ndarray
    frames: tuple[FrameWithMouth, ...]


def mouth_box(landmarks: np.ndarray, margin: float = 0.35) -> tuple[int, int, int, int]:
    """The box around the mouth points of iBUG-68 ``landmarks``, widened by ``margin``."""
    mouth = landmarks[MOUTH]
    low, high = mouth.min(axis=0), mouth.max(axis=0)
    pad = (high - low) * margin
    left, top = np.floor(low - pad).astype(int)
    right, bottom = np.ceil(high + pad).astype(int)
    return int(left), int(top), int(right), int(bottom)


def clip_evidence(path: Path, start: float) -> ClipEvidence:
    """The crops and frames of the clip of ``path`` (a video, or .npy crops) that starts at
    ``start`` seconds.

    Raises:
        MediaError: the input cannot be read again.
    """
    if path.suffix.lower() == ".npy":
        first = round(start * FPS)
        crops = np.load(path, mmap_mode="r", allow_pickle=False)[first : first + CLIP_FRAMES]
        return ClipEvidence(start, np.array(crops), ())
    from stream.faces.reader import MouthCropReader

    records = []
    for record in MouthCropReader(path, smoothing="lookahead"):
        if record.pts >= start - _SAME_TIME:
            records.append(record)
            if len(records) == CLIP_FRAMES:
                break
    shown = {records[i].pts: records[i].landmarks for i in SHOWN_FRAMES if i < len(records)}
    return ClipEvidence(start, np.stack([r.crop for r in records]), tuple(_frames(path, shown)))


def _frames(path: Path, landmarks: dict[float, np.ndarray]) -> list[FrameWithMouth]:
    """The 25 fps frames of ``path`` at the times in ``landmarks``, with their mouth boxes."""
    found: list[FrameWithMouth] = []
    last = max(landmarks, default=-1.0)
    with VideoFile(path) as video:
        for tick in resample(video.frames()):
            for pts, points in landmarks.items():
                if abs(tick.pts - pts) <= _SAME_TIME:
                    found.append(FrameWithMouth(pts, tick.item, mouth_box(points)))
            if tick.pts > last:
                break
    return found
