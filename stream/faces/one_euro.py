"""MediaPipe's landmark smoothing for a tracked face: a One Euro filter on every coordinate.

MediaPipe's ``FaceLandmarker`` smooths the landmarks it returns when it tracks one face in
VIDEO mode (min cutoff 0.05 Hz, beta 80, derivative cutoff 1 Hz; velocities scaled by the
inverse of the face's size, the mean of its landmarks' bounding-box width and height);
the next frame's region still comes from the unsmoothed landmarks. Casiez et al., "1 Euro
Filter" (CHI 2012). Timestamps that do not increase leave the values as they are.
"""

from __future__ import annotations

import math

import numpy as np

MIN_CUTOFF = 0.05
BETA = 80.0
DERIVATIVE_CUTOFF = 1.0
#: the rate assumed until two timestamps have been seen (MediaPipe's default)
FIRST_RATE = 30.0


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray | float:
    """The exponential smoothing factor of a low-pass filter at ``cutoff`` Hz."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


class OneEuro:
    """Smooths successive (N, 2) point sets of one face, in pixels."""

    def __init__(self) -> None:
        self._rate = FIRST_RATE
        self._last_ns = 0
        self._raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(self, points: np.ndarray, stamp_ns: int) -> np.ndarray:
        """The smoothed points for ``points`` seen at ``stamp_ns`` (nanoseconds)."""
        if self._last_ns >= stamp_ns:
            return points
        if self._last_ns != 0 and stamp_ns != 0:
            self._rate = 1e9 / (stamp_ns - self._last_ns)
        self._last_ns = stamp_ns
        low, high = points.min(axis=0), points.max(axis=0)
        scale = 1.0 / (((high - low).sum()) / 2.0)
        if self._raw is None:
            speed = np.zeros_like(points)
        else:
            speed = (points - self._raw) * scale * self._rate
        if self._speed is None:
            self._speed = speed
        else:
            a = _alpha(DERIVATIVE_CUTOFF, self._rate)
            self._speed = a * speed + (1 - a) * self._speed
        cutoff = MIN_CUTOFF + BETA * np.abs(self._speed)
        if self._value is None:
            self._value = points.copy()
        else:
            a = _alpha(cutoff, self._rate)
            self._value = a * points + (1 - a) * self._value
        self._raw = points
        return self._value
