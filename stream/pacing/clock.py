"""Resample frames of any rate (24, 25, 30, variable) to a fixed 25 fps grid by timestamp.

Rule: within a *segment*, output frame k has time ``t0 + k / fps`` (``t0`` = the segment's
first input pts) and carries the input frame whose pts is **nearest** to that time (a tie
goes to the earlier frame). Nearest rather than "latest at or before" keeps a 25 fps input
with timestamp jitter one-to-one: no frame is duplicated or dropped as long as each frame
stays within half a frame (20 ms) of the grid its segment's first frame starts, i.e. for
jitter under +-10 ms.

A gap between consecutive input frames longer than ``max_gap`` is not stretched over with
repeated frames: the segment ends (its last output frames are those within half an output
period after its last input frame) and a new one starts at the next input frame, whose
first output :attr:`Tick.restart` is True so a window can start over. A timestamp that
goes back by more than ``max_gap`` (a source restarting) also starts a new segment; a
frame whose pts does not increase otherwise is dropped and counted in :attr:`Resampler.dropped`.

Live use: :meth:`Resampler.push` one input frame, get 0..n output frames; the output for
time t is known as soon as an input frame at or after t arrives (at most one input frame of
delay). Offline use: :func:`resample` over an iterable of ``(pts, item)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from engines.method import FPS, FRAME_PERIOD

T = TypeVar("T")

#: default longest gap (seconds) bridged by repeating frames: five frames at 25 fps.
MAX_GAP = 5 * FRAME_PERIOD
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Tick(Generic[T]):
    """One output frame on the fixed-rate grid.

    Attributes:
        pts: the output frame's time, ``t0 + k / fps`` in the source's own clock.
        source_pts: the pts of the input frame it carries.
        item: that input frame's payload (e.g. the RGB image).
        restart: True for the first output of a segment (the very first one, and the first
            one after a gap or a timestamp jump): consecutive-frame windows must start over.
    """

    pts: float
    source_pts: float
    item: T
    restart: bool


class Resampler(Generic[T]):
    """Push input frames in arrival order, get fixed-rate output frames (see module doc)."""

    def __init__(self, fps: float = FPS, max_gap: float = MAX_GAP) -> None:
        if fps <= 0 or max_gap <= 0:
            raise ValueError("fps and max_gap must be positive")
        self.fps = fps
        self.max_gap = max_gap
        self.dropped = 0
        self._t0 = 0.0
        self._k = 0
        self._last: tuple[float, T] | None = None

    def push(self, pts: float, item: T) -> list[Tick[T]]:
        """Feed one input frame; return the output frames it completes (oldest first)."""
        last = self._last
        if last is None:
            return self._start(pts, item, [])
        step = pts - last[0]
        if step > self.max_gap or step < -self.max_gap:
            return self._start(pts, item, self.flush())
        if step <= 0:
            self.dropped += 1
            return []
        out = self._emit_until(pts, last, (pts, item))
        self._last = (pts, item)
        return out

    def flush(self) -> list[Tick[T]]:
        """End of input: the output frames still owed to the last input frame."""
        last = self._last
        if last is None:
            return []
        return self._emit_until(last[0] + 0.5 / self.fps, last, None)

    def _start(self, pts: float, item: T, out: list[Tick[T]]) -> list[Tick[T]]:
        """Open a new segment at ``pts``; its first output carries ``item``."""
        self._t0, self._k = pts, 1
        self._last = (pts, item)
        out.append(Tick(pts, pts, item, restart=True))
        return out

    def _emit_until(
        self, limit: float, before: tuple[float, T], after: tuple[float, T] | None
    ) -> list[Tick[T]]:
        """Output frames with time <= ``limit``, each from the nearer of ``before``/``after``."""
        out: list[Tick[T]] = []
        while (t := self._t0 + self._k / self.fps) <= limit + _EPS:
            near = before
            if after is not None and after[0] - t < t - before[0] - _EPS:
                near = after
            out.append(Tick(t, near[0], near[1], restart=False))
            self._k += 1
        return out


def resample(
    frames: Iterable[tuple[float, T]], fps: float = FPS, max_gap: float = MAX_GAP
) -> Iterator[Tick[T]]:
    """Offline form of :class:`Resampler`: all output frames of ``(pts, item)`` input."""
    resampler: Resampler[T] = Resampler(fps, max_gap)
    for pts, item in frames:
        yield from resampler.push(pts, item)
    yield from resampler.flush()
