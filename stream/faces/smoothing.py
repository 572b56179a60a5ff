"""Landmark smoothing over a window of frames: the reference look-ahead and live variants.

The reference averages each frame's landmarks with the next 11 frames' (a look-ahead that
costs 11 frames, 0.44 s, of latency). Live use needs less: the causal variant averages the
last up to 12 frames, a short look-ahead variant the 12 frames ending ``ahead`` frames
later. Everything here works on one *run* of consecutive frames of one face; a missing
face or a clock break ends the run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")

#: frames averaged by the reference smoothing.
WINDOW = 12


@dataclass(frozen=True, slots=True)
class Smoothing:
    """How landmarks are smoothed: frame i gets the mean of frames i+ahead-window+1 ..
    i+ahead of its run. ``reference_end``: at the end of a run, frames without a full
    window ahead reuse the last full window (the reference's rule) instead of a shrinking
    one. ``ahead`` is also the latency, in frames."""

    window: int
    ahead: int
    reference_end: bool = False

    @classmethod
    def named(cls, name: str) -> Smoothing:
        """``"lookahead"`` (the reference), ``"causal"``, ``"ahead:N"`` (N = 1..11) or
        ``"none"``."""
        if name == "lookahead":
            return cls(WINDOW, WINDOW - 1, reference_end=True)
        if name == "causal":
            return cls(WINDOW, 0)
        if name == "none":
            return cls(1, 0)
        prefix, _, count = name.partition(":")
        if prefix == "ahead" and count.isdigit() and 0 < int(count) < WINDOW:
            return cls(WINDOW, int(count))
        raise ValueError(
            f"unknown smoothing {name!r} (expected lookahead, causal, none or ahead:1..11)"
        )


def smooth(landmarks: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """Smooth a whole run of landmarks (T, ...) at once (same result as :class:`Smoother`)."""
    count = len(landmarks)
    index = np.arange(count)
    if smoothing.reference_end:
        span = min(count, smoothing.window)
        starts = np.minimum(np.maximum(index + smoothing.ahead - span + 1, 0), count - span)
        stops = starts + span
    else:
        starts = np.maximum(index + smoothing.ahead - smoothing.window + 1, 0)
        stops = np.minimum(index + smoothing.ahead + 1, count)
    points = np.asarray(landmarks, dtype=np.float64)
    # each window's own mean, as the reference and Smoother compute it (a running sum
    # differs in the last bits, which flips a few crop pixels)
    return np.array(
        [points[start:stop].mean(axis=0) for start, stop in zip(starts, stops, strict=True)]
    ).reshape(points.shape)


class Smoother(Generic[T]):
    """Streaming smoothing of one run: push each frame's landmarks with a payload, get the
    payloads back ``ahead`` frames later with their smoothed landmarks."""

    def __init__(self, smoothing: Smoothing) -> None:
        self.smoothing = smoothing
        self._recent: deque[np.ndarray] = deque(maxlen=smoothing.window)
        self._waiting: deque[tuple[T, int]] = deque()
        self._count = 0

    def push(self, landmarks: np.ndarray, item: T) -> list[tuple[T, np.ndarray]]:
        """Add the next frame; return the ``(item, smoothed)`` pairs now complete."""
        self._recent.append(np.asarray(landmarks, dtype=np.float64))
        self._waiting.append((item, self._count))
        self._count += 1
        if len(self._waiting) <= self.smoothing.ahead:
            return []
        return [(self._waiting.popleft()[0], np.mean(self._recent, axis=0))]

    def flush(self) -> list[tuple[T, np.ndarray]]:
        """End of the run: the frames still waiting, then start a new run."""
        out = []
        recent = list(self._recent)
        for item, index in self._waiting:
            if self.smoothing.reference_end:
                window = recent
            else:
                first = index + self.smoothing.ahead - self.smoothing.window + 1
                window = recent[max(first - (self._count - len(recent)), 0) :]
            out.append((item, np.mean(window, axis=0)))
        self._recent.clear()
        self._waiting.clear()
        self._count = 0
        return out
