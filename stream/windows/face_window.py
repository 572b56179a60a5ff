"""Per-face windows of consecutive 25 fps mouth frames, and which encodings they need.

Frame-once encoding (see docs/design.md): the encoder's feature of frame *i* in a window
depends only on frames i-2..i+2 of that window, with zeros for frames outside it. A feature
is therefore named by a :data:`FeatureKey` ``(i, before, after)``: frame index, and how many
of its two neighbours on each side are zeros. ``(i, 0, 0)`` (an *interior* frame) is the
same in every window that holds i-2..i+2, so it is computed once; only the two frames at
each end of a window need their zero-padded variants, and the window's logit is exactly the
network's logit on that clip.

:class:`FaceWindow` keeps one face's recent frames; each :meth:`FaceWindow.push` returns the
encodings that just became computable (a :class:`FeatureJob` each, so they can run while
the window fills) and, every ``stride`` frames, a complete :class:`MouthWindow`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream.records import MouthWindow

#: (frame index, zero neighbours before, zero neighbours after)
FeatureKey = tuple[int, int, int]
#: neighbours on each side that a frame's feature depends on (the 3D conv's kernel of 5)
REACH = 2
PERIOD = 1.0 / 25.0


@dataclass(frozen=True, slots=True)
class FeatureJob:
    """One encoder input: the 5 frames (5 x 88 x 88, zeros for padding) behind ``key``."""

    stream_id: str
    face: int
    key: FeatureKey
    frames: np.ndarray


def window_keys(first: int, length: int) -> list[FeatureKey]:
    """The feature of each frame of the window starting at ``first``, in order."""
    last = first + length - 1
    return [
        (i, max(0, first + REACH - i), max(0, i + REACH - last)) for i in range(first, last + 1)
    ]


def five_frames(frames: Sequence[np.ndarray], key: FeatureKey, first: int) -> np.ndarray:
    """The encoder input for ``key`` from ``frames`` (frame ``first`` at position 0): frames
    i-2..i+2, with the key's zero neighbours (and anything outside ``frames``) as zeros."""
    index, before, after = key
    out = np.zeros((2 * REACH + 1, *frames[0].shape), dtype=np.float32)
    for slot in range(before, 2 * REACH + 1 - after):
        position = index - REACH + slot - first
        if 0 <= position < len(frames):
            out[slot] = frames[position]
    return out


class FaceWindow:
    """The recent frames of one tracked face, cut into windows of ``length`` every ``stride``.

    Frames arrive with their 25 fps index. A face missing for up to ``hold`` frames keeps its
    window (its last frame stands in for the missing ones, as the 25 fps clock does for
    short gaps); a longer gap, or ``restart=True`` (the clock broke the stream), starts over.
    """

    def __init__(
        self, stream_id: str, face: int, *, length: int = 25, stride: int = 5, hold: int = 2
    ) -> None:
        self.stream_id = stream_id
        self.face = face
        self.length = length
        self.stride = stride
        self.hold = hold
        self._frames: deque[np.ndarray] = deque(maxlen=length)
        self._pts: deque[float] = deque(maxlen=length)
        self._start = 0
        self._last = -1

    def push(
        self, index: int, pts: float, frame: np.ndarray, arrival: float, restart: bool = False
    ) -> tuple[list[FeatureJob], list[MouthWindow]]:
        """Add frame ``index`` (normalised 88 x 88); return the encodings it makes computable
        and the windows it completes (at most one unless a held gap is filled)."""
        gap = index - self._last - 1
        if restart or not self._frames or gap < 0 or gap > self.hold:
            self._frames.clear()
            self._pts.clear()
            self._start = index
            gap = 0
        jobs: list[FeatureJob] = []
        windows: list[MouthWindow] = []
        for step in range(gap, -1, -1):
            if step:
                self._append(self._frames[-1], self._pts[-1] + PERIOD, index - step)
            else:
                self._append(frame, pts, index)
            jobs += self._jobs()
            windows += self._window(arrival)
        return jobs, windows

    def _append(self, frame: np.ndarray, pts: float, index: int) -> None:
        self._frames.append(frame)
        self._pts.append(pts)
        self._last = index

    def _jobs(self) -> list[FeatureJob]:
        """Encodings the newest frame completes: the interior feature two frames back and
        the left-edge variants of an upcoming window's first two frames."""
        newest = self._last
        keys: list[FeatureKey] = []
        centre = newest - REACH
        if centre - REACH >= self._start and self._is_interior(centre):
            keys.append((centre, 0, 0))
        for offset in range(REACH):  # frame first+offset needs frames up to first+offset+2
            first = newest - REACH - offset
            if first >= self._start and (first - self._start) % self.stride == 0:
                keys.append((first + offset, REACH - offset, 0))
        base = newest - len(self._frames) + 1
        return [
            FeatureJob(self.stream_id, self.face, key, five_frames(self._frames, key, base))
            for key in keys
        ]

    def _is_interior(self, index: int) -> bool:
        """Whether some window of this segment holds ``index`` with two real frames each side."""
        offset = index - self._start
        latest_first = (offset - REACH) // self.stride * self.stride
        return offset - latest_first <= self.length - 1 - REACH

    def _window(self, arrival: float) -> list[MouthWindow]:
        """The window ending with the newest frame, if one is due."""
        first = self._last - self.length + 1
        if len(self._frames) < self.length or (first - self._start) % self.stride:
            return []
        window = MouthWindow(
            stream_id=self.stream_id,
            face=self.face,
            first=first,
            pts=(self._pts[0], self._pts[-1] + PERIOD),
            frames=tuple(self._frames),
            arrival=arrival,
        )
        return [window]
