"""Per-face windows: when they are cut, how gaps are handled, and which encodings they need."""

from __future__ import annotations

import numpy as np
import pytest

from engines.frames import five_frame_inputs, window_keys
from stream.windows.face_window import FaceWindow


def frame(value: float) -> np.ndarray:
    """A recognisable 88 x 88 frame: every pixel holds ``value``."""
    return np.full((88, 88), value, dtype=np.float32)


def feed(window: FaceWindow, indices, restart_at=()):
    """Push frames ``indices`` (pts = index / 25, pixel value = index); collect the output."""
    jobs, windows = [], []
    for index in indices:
        new_jobs, new_windows = window.push(
            index, index / 25, frame(index), arrival=0.0, restart=index in restart_at
        )
        jobs += new_jobs
        windows += new_windows
    return jobs, windows


def test_window_keys_pad_only_the_two_frames_at_each_end():
    keys = window_keys(10, 25)
    assert keys[:3] == [(10, 2, 0), (11, 1, 0), (12, 0, 0)]
    assert keys[-3:] == [(32, 0, 0), (33, 0, 1), (34, 0, 2)]
    assert all(key == (10 + i, 0, 0) for i, key in enumerate(keys) if 2 <= i <= 22)


def test_five_frame_inputs_zero_the_padded_neighbours():
    frames = [frame(i) for i in range(10, 35)]
    left, right, interior = five_frame_inputs(frames, [(10, 2, 0), (33, 0, 1), (20, 0, 0)], 10)
    assert [float(f[0, 0]) for f in left[0]] == [0.0, 0.0, 10.0, 11.0, 12.0]
    assert [float(f[0, 0]) for f in right[0]] == [31.0, 32.0, 33.0, 34.0, 0.0]
    assert [float(f[0, 0]) for f in interior[0]] == [18.0, 19.0, 20.0, 21.0, 22.0]


@pytest.mark.parametrize("stride", [1, 5, 25])
def test_a_window_every_stride_frames_with_its_pts_range(stride):
    _, windows = feed(FaceWindow("cam", 0, stride=stride), range(100))
    assert [w.first for w in windows] == list(range(0, 76, stride))
    for w in windows:
        assert w.pts == pytest.approx((w.first / 25, (w.first + 25) / 25))
        assert [float(f[0, 0]) for f in w.frames] == list(range(w.first, w.first + 25))


def test_a_short_gap_is_held_with_the_last_frame():
    indices = [i for i in range(40) if i not in (10, 11)]
    _, windows = feed(FaceWindow("cam", 0, stride=5, hold=2), indices)
    first = windows[0]
    assert first.first == 0
    values = [float(f[0, 0]) for f in first.frames]
    assert values[9:13] == [9.0, 9.0, 9.0, 12.0]
    assert first.pts == pytest.approx((0.0, 1.0))


def test_a_long_gap_or_a_clock_break_starts_the_window_over():
    indices = [i for i in range(60) if i not in (10, 11, 12)]
    _, windows = feed(FaceWindow("cam", 0, stride=5, hold=2), indices)
    assert [w.first for w in windows] == [13, 18, 23, 28, 33]
    _, windows = feed(FaceWindow("cam", 0, stride=5), range(60), restart_at={20})
    assert [w.first for w in windows] == [20, 25, 30, 35]


@pytest.mark.parametrize("stride", [1, 5, 12, 25])
def test_prefetched_encodings_are_needed_and_leave_two_per_window(stride):
    """Each job's input is exactly what a coming window needs, and when a window is complete
    every encoding it needs has been handed out except its two right-edge variants."""
    jobs, windows = feed(FaceWindow("cam", 0, stride=stride), range(120))
    prefetched = {job.key: job for job in jobs}
    assert len(prefetched) == len(jobs)
    needed = {key: w for w in windows for key in window_keys(w.first, 25)}
    for key, job in prefetched.items():
        w = needed.get(key)
        if w is None:  # for a window after the last frame
            assert key[0] >= windows[-1].first + stride
            continue
        np.testing.assert_array_equal(job.frames, five_frame_inputs(w.frames, [key], w.first)[0])
    for w in windows:
        last = w.first + 24
        ready = {key for key in prefetched if key[0] + 2 - key[2] <= last}
        missing = [key for key in window_keys(w.first, 25) if key not in ready]
        assert missing == [(last - 1, 0, 1), (last, 0, 2)]
