"""The 25 fps clock: nearest-frame resampling by timestamp, breaks at gaps, live == offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.pacing.clock import Resampler, Tick, resample
from stream.sources.video_file import VideoFile

DATA = Path(__file__).parent / "data"


def _video_ticks(name: str) -> tuple[list[float], list[Tick[int]]]:
    """Input pts of a fixture and its 25 fps output (items = input frame index)."""
    with VideoFile(DATA / name) as video:
        pts = [t for t, _ in video.frames()]
    return pts, list(resample((t, i) for i, t in enumerate(pts)))


@pytest.mark.parametrize("name", ["talking_30fps.mp4", "talking_24fps.mp4", "talking.mp4"])
def test_fixtures_come_out_at_25_fps_in_order(name):
    pts, ticks = _video_ticks(name)
    duration = pts[-1] - pts[0] + (pts[1] - pts[0])
    assert abs(len(ticks) - duration * 25) <= 1
    np.testing.assert_allclose(np.diff([t.pts for t in ticks]), 0.04, atol=1e-9)
    items = [t.item for t in ticks]
    assert items == sorted(items) and items[0] == 0 and items[-1] == len(pts) - 1
    assert [t.restart for t in ticks] == [True] + [False] * (len(ticks) - 1)
    # every output carries the input frame nearest to its time
    for tick in ticks:
        assert abs(tick.source_pts - tick.pts) == min(abs(p - tick.pts) for p in pts)


def test_30_fps_drops_one_frame_in_six_and_25_fps_is_one_to_one():
    pts, ticks = _video_ticks("talking_30fps.mp4")
    assert len(pts) == 90 and len(ticks) == 75 and len({t.item for t in ticks}) == 75
    _, ticks = _video_ticks("talking.mp4")
    assert [t.item for t in ticks] == list(range(100))


def test_24_fps_repeats_one_frame_in_24():
    pts, ticks = _video_ticks("talking_24fps.mp4")
    assert len(pts) == 72 and len(ticks) == 75
    assert len({t.item for t in ticks}) == 72


def test_jitter_under_10_ms_keeps_25_fps_one_to_one():
    rng = np.random.default_rng(0)
    pts = 10.0 + np.arange(250) / 25 + rng.uniform(-0.0095, 0.0095, 250)
    ticks = list(resample((t, i) for i, t in enumerate(pts)))
    assert [t.item for t in ticks] == list(range(250))


def test_variable_rate_keeps_time_and_order():
    rng = np.random.default_rng(1)
    pts = np.cumsum(rng.uniform(0.01, 0.09, 400))  # about 20 fps, irregular
    ticks = list(resample((t, i) for i, t in enumerate(pts)))
    assert abs(len(ticks) - (pts[-1] - pts[0]) * 25) <= 1
    assert all(a.item <= b.item for a, b in zip(ticks, ticks[1:], strict=False))
    assert all(abs(t.pts - t.source_pts) <= 0.045 for t in ticks)
    assert not any(t.restart for t in ticks[1:])


def test_a_long_gap_is_a_break_not_a_stretch():
    pts = [i / 25 for i in range(50)] + [3.0 + i / 25 for i in range(50)]
    ticks = list(resample((t, i) for i, t in enumerate(pts)))
    assert len(ticks) == 100  # nothing invented for the 1.04 s gap
    restarts = [i for i, t in enumerate(ticks) if t.restart]
    assert restarts == [0, 50]
    assert ticks[50].pts == ticks[50].source_pts == 3.0


def test_a_short_gap_is_bridged_with_the_nearest_frames():
    pts = [i / 25 for i in range(10)] + [0.52 + i / 25 for i in range(10)]  # 0.16 s gap
    ticks = list(resample((t, i) for i, t in enumerate(pts)))
    assert not any(t.restart for t in ticks[1:])
    # 0.44 s is as far from 0.36 as from 0.52: a tie goes to the earlier frame
    assert len(ticks) == 23 and [t.item for t in ticks[9:15]] == [9, 9, 9, 10, 10, 11]


def test_timestamps_that_go_back_are_dropped_or_restart():
    resampler: Resampler[str] = Resampler()
    assert [t.item for t in resampler.push(1.00, "a")] == ["a"]
    assert resampler.push(1.00, "same") == [] and resampler.push(0.95, "back") == []
    assert resampler.dropped == 2
    ticks = resampler.push(0.0, "restart")  # a source starting over
    assert [(t.item, t.restart) for t in ticks] == [("restart", True)]


def test_live_pushes_give_the_offline_result_with_one_frame_of_delay():
    rng = np.random.default_rng(2)
    pts = np.cumsum(rng.uniform(0.02, 0.05, 200))
    resampler: Resampler[int] = Resampler()
    live = []
    for i, t in enumerate(pts):
        out = resampler.push(t, i)
        assert all(tick.pts <= t + 1e-9 for tick in out)  # never waits beyond this frame
        live += out
    live += resampler.flush()
    assert live == list(resample((t, i) for i, t in enumerate(pts)))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Resampler(fps=0)
