"""Decode a video file with PyAV into ``(pts_seconds, RGB uint8 H x W x 3)`` frames.

Bad input becomes a one-line :class:`MediaError`: a missing file, a file that is not a
video, a container without a video stream. A file that breaks *mid-stream* (truncated
download, corrupt packets) is not an exception: decoding stops cleanly after the last good
frame and :attr:`VideoFile.problem` says what happened, so a scan can still use what was
decoded and tell the user. A file is also called truncated when its frames stop well
before the duration its header announces (Matroska and WebM carry no frame count).

Frames come upright: a display rotation in the file (phones record portrait video as
landscape frames plus a rotation) is applied, as a player would (:func:`upright_rgb`), and
no larger than 4K (:data:`MAX_FRAME_PIXELS`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from errors import LipForensicsWarning, MediaError
from stream.sources.hwaccel import hwaccel_failure, hwaccel_options
from stream.sources.urls import redact

#: file suffixes taken for videos when a folder is scanned (``.npy``: saved mouth crops).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".npy")
#: the most pixels a frame keeps: 4K UHD (3840 x 2160, either orientation). Larger frames
#: are scaled down (aspect kept) as they are converted, so that a huge picture (a
#: 16000 x 16000 MJPEG is 768 MB of RGB) cannot blow the frame buffers' byte budget; 4K and
#: below are untouched (the faces of a gallery need the pixels).
MAX_FRAME_PIXELS = 3840 * 2160
#: fewer decoded frames than this share of the container's frame count = truncated.
_TRUNCATED_SHARE = 0.98
#: frames ending more than this many seconds before the announced duration = truncated (the
#: container's duration may cover an audio track a little longer than the video).
_TRUNCATED_SECONDS = 1.0


def fitted_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` scaled down, aspect kept, to at most :data:`MAX_FRAME_PIXELS`
    pixels; unchanged when it has no more."""
    if width * height <= MAX_FRAME_PIXELS:
        return width, height
    scale = math.sqrt(MAX_FRAME_PIXELS / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """``frame`` as RGB uint8 (H, W, 3), turned by its display rotation (a multiple of 90
    degrees counter-clockwise, as a player shows it). Mirroring flags are not applied.

    Every source converts its frames here: a frame above 4K (:data:`MAX_FRAME_PIXELS`) is
    scaled down to fit as it is converted, before anything buffers it, with a warning (once
    per size)."""
    width, height = fitted_size(frame.width, frame.height)
    if (width, height) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
        warnings.warn(
            LipForensicsWarning(
                f"frames of {frame.width}x{frame.height} are above 4K (3840x2160 pixels): "
                f"scaled down to {width}x{height} before buffering"
            ),
            stacklevel=2,
        )
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says about its first video stream.

    Attributes:
        width, height: coded frame size in pixels (before any display rotation).
        fps: average frame rate (0.0 when the container does not say).
        duration: seconds (0.0 when unknown).
        frames: frame count from the header (0 when unknown).
    """

    width: int
    height: int
    fps: float
    duration: float
    frames: int


class VideoFile:
    """An open video file; iterate :meth:`frames` once, then read :attr:`problem`.

    Use as a context manager::

        with VideoFile("clip.mp4") as video:
            for pts, rgb in video.frames():
                ...
            if video.problem:
                print("warning:", video.problem)
    """

    def __init__(self, path: str | Path, hwaccel: str | None = None) -> None:
        """Open ``path``; ``hwaccel`` decodes on that device (:mod:`stream.sources.hwaccel`)."""
        self.path = Path(path)
        if not self.path.exists():
            raise MediaError(f"video file not found: {redact(str(self.path))}")
        if not self.path.is_file():
            raise MediaError(f"not a file: {redact(str(self.path))} (expected a video file)")
        try:
            self._container = av.open(str(self.path), **hwaccel_options(hwaccel))
        except av.FFmpegError as error:
            if hwaccel is not None:  # the file may be fine: say what was asked of the device
                raise MediaError(
                    f"cannot decode {self.path}: {hwaccel_failure(hwaccel, error)}"
                ) from None
            raise MediaError(
                f"cannot read {self.path} as a video (corrupt, truncated or not a video): "
                f"{_reason(error)}"
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{self.path} has no video stream (expected a video file)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.problem: str | None = None
        self.decoded = 0

    @property
    def info(self) -> VideoInfo:
        """Size, rate, duration and frame count as the container reports them."""
        stream = self._stream
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        rate = stream.average_rate or stream.base_rate
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0,
            duration=duration,
            frames=int(stream.frames or 0),
        )

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """Yield ``(pts_seconds, rgb)`` in presentation order; ``rgb`` is uint8 (H, W, 3).

        A decode error mid-stream ends the iteration and sets :attr:`problem`.
        """
        info = self.info
        fps = info.fps or 25.0
        end = 0.0
        try:
            for frame in self._container.decode(self._stream):
                pts = float(frame.time if frame.time is not None else self.decoded / fps)
                self.decoded += 1
                end = max(end, pts + 1.0 / fps)
                yield pts, upright_rgb(frame)
        except av.FFmpegError as error:
            self.problem = (
                f"{self.path}: decoding stopped after {self.decoded} frames "
                f"(corrupt or truncated): {_reason(error)}"
            )
            return
        if info.frames and self.decoded < _TRUNCATED_SHARE * info.frames:
            self.problem = (
                f"{self.path}: only {self.decoded} of {info.frames} frames could be decoded "
                "(truncated or corrupt file)"
            )
        elif info.duration and end < info.duration - _TRUNCATED_SECONDS:
            self.problem = (
                f"{self.path}: frames end at {end:.1f} s of the {info.duration:.1f} s the file "
                "announces (truncated or corrupt file)"
            )

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(error: Exception) -> str:
    """FFmpeg's short reason, without the file name it repeats."""
    return getattr(error, "strerror", None) or str(error)
