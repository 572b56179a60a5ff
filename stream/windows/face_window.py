"""Per-face windows of consecutive 25 fps mouth frames, and which encodings they need.

Frame-once encoding (see docs/design.md and :mod:`engines.frames`): a feature is named by
a :data:`~engines.frames.FrameKey` ``(i, before, after)``; an interior frame ``(i, 0, 0)``
is encoded once for every window that holds it, and only the two frames at each end of a
window need their zero-padded variants, so the window's logit is exactly the network's.

:class:`FaceWindow` keeps one face's recent frames; each :meth:`FaceWindow.push` returns the
encodings that just became computable (a :class:`FeatureJob` each, so they can run while
the window fills) and, every ``stride`` frames, a complete :class:`MouthWindow`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from engines.frames import FrameKey, five_frame_inputs
from engines.method import CLIP_FRAMES, FRAME_CONTEXT, FRAME_PERIOD
from stream.events import MouthWindow
from stream.windows.quality import Sighting, window_quality


@dataclass(frozen=True, slots=True)
class FeatureJob:
    """One encoder input row (1 x 5 x 88 x 88, zeros for padding) behind ``key``
    (:func:`engines.frames.five_frame_inputs`)."""

    stream_id: str
    face: int
    key: FrameKey
    frames: np.ndarray


class FaceWindow:
    """The recent frames of one tracked face, cut into windows of ``length`` every ``stride``.

    Frames arrive with their 25 fps index. A face missing for up to ``hold`` frames keeps its
    window (its last frame stands in for the missing ones, as the 25 fps clock does for
    short gaps); a longer gap, or ``restart=True`` (the clock broke the stream), starts over.
    """

    def __init__(
        self,
        stream_id: str,
        face: int,
        *,
        length: int = CLIP_FRAMES,
        stride: int = 5,
        hold: int = 2,
    ) -> None:
        self.stream_id = stream_id
        self.face = face
        self.length = length
        self.stride = stride
        self.hold = hold
        self._frames: deque[np.ndarray] = deque(maxlen=length)
        self._pts: deque[float] = deque(maxlen=length)
        self._sightings: deque[Sighting] = deque(maxlen=length)
        self._start = 0
        self._last = -1

    def push(
        self,
        index: int,
        pts: float,
        frame: np.ndarray,
        arrival: float,
        restart: bool = False,
        sighting: Sighting | None = None,
    ) -> tuple[list[FeatureJob], list[MouthWindow]]:
        """Add frame ``index`` (normalised 88 x 88; ``sighting``: where the face was, for the
        window's :class:`~stream.events.WindowQuality`); return the encodings it makes
        computable and the windows it completes (at most one unless a held gap is filled)."""
        gap = index - self._last - 1
        if restart or not self._frames or gap < 0 or gap > self.hold:
            self._frames.clear()
            self._pts.clear()
            self._sightings.clear()
            self._start = index
            gap = 0
        jobs: list[FeatureJob] = []
        windows: list[MouthWindow] = []
        for step in range(gap, -1, -1):
            if step:
                held = self._sightings[-1] if self._sightings else None
                self._append(self._frames[-1], self._pts[-1] + FRAME_PERIOD, index - step, held)
            else:
                self._append(frame, pts, index, sighting)
            jobs += self._jobs()
            windows += self._window(arrival)
        return jobs, windows

    def _append(self, frame: np.ndarray, pts: float, index: int, sighting: Sighting | None) -> None:
        self._frames.append(frame)
        self._pts.append(pts)
        if sighting is not None:
            self._sightings.append(sighting)
        self._last = index

    def _jobs(self) -> list[FeatureJob]:
        """Encodings the newest frame completes: the interior feature two frames back and
        the left-edge variants of an upcoming window's first two frames."""
        newest = self._last
        keys: list[FrameKey] = []
        centre = newest - FRAME_CONTEXT
        if centre - FRAME_CONTEXT >= self._start and self._is_interior(centre):
            keys.append((centre, 0, 0))
        for offset in range(FRAME_CONTEXT):  # frame first+offset needs up to first+offset+2
            first = newest - FRAME_CONTEXT - offset
            if first >= self._start and (first - self._start) % self.stride == 0:
                keys.append((first + offset, FRAME_CONTEXT - offset, 0))
        if not keys:
            return []
        inputs = five_frame_inputs(self._frames, keys, first=newest - len(self._frames) + 1)
        return [
            FeatureJob(self.stream_id, self.face, key, row)
            for key, row in zip(keys, inputs, strict=True)
        ]

    def _is_interior(self, index: int) -> bool:
        """Whether some window of this segment holds ``index`` with two real frames each side."""
        offset = index - self._start
        latest_first = (offset - FRAME_CONTEXT) // self.stride * self.stride
        return offset - latest_first <= self.length - 1 - FRAME_CONTEXT

    def _window(self, arrival: float) -> list[MouthWindow]:
        """The window ending with the newest frame, if one is due."""
        first = self._last - self.length + 1
        if len(self._frames) < self.length or (first - self._start) % self.stride:
            return []
        window = MouthWindow(
            stream_id=self.stream_id,
            face=self.face,
            first=first,
            pts=(self._pts[0], self._pts[-1] + FRAME_PERIOD),
            frames=tuple(self._frames),
            arrival=arrival,
            quality=window_quality(self._sightings) if self._sightings else None,
        )
        return [window]
