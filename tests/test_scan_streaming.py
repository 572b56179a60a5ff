"""`scan` streams: crops are scored as they are read, in bounded memory, with exactly the
logits of collecting every crop first (real video, real MediaPipe, a real narrow network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.backends import TorchBackend
from engines.clips import StreamScorer, clip_starts, score_clips
from engines.method import CLIP_FRAMES
from stream.scan.scanner import CropsFile, ScanInput, open_input, read_input, scan_source
from tests.clip_builder import decode, write_clip
from tests.live_support import TALKING, narrow_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data"
SIZE = (320, 240)


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model(seed=5))


@pytest.fixture(scope="module")
def gaps_video(tmp_path_factory) -> Path:
    """Talking frames cut by frames without a face: four runs (60, 40, 40 and 20 frames)."""
    talking, empty = decode(TALKING, SIZE), decode(DATA / "no_face.mp4", SIZE)
    frames = talking[:60] + empty[:5] + talking[60:] + empty[:3] + talking[:40]
    frames += empty[:2] + talking[:20]
    return write_clip(tmp_path_factory.mktemp("gaps") / "gaps.mp4", frames, SIZE)


@pytest.fixture(scope="module")
def collected(gaps_video) -> dict[str, ScanInput]:
    """Every crop of each video, collected first (the reference)."""
    return {name: read_input(path) for name, path in videos(gaps_video).items()}


def videos(gaps_video: Path) -> dict[str, Path]:
    return {"talking": TALKING, "gaps": gaps_video}


@pytest.mark.parametrize("stride", [25, 5])
@pytest.mark.parametrize("name", ["talking", "gaps"])
def test_streamed_scan_equals_collecting_then_scoring(backend, gaps_video, collected, name, stride):
    whole = collected[name]
    if name == "gaps":
        assert [stop - start for start, stop in whole.runs] == [60, 40, 40, 20]
    starts = clip_starts(whole.runs, stride)
    streamed = scan_source(open_input(videos(gaps_video)[name]), backend, stride)
    assert streamed.clip_times == [float(whole.pts[s]) for s in starts]
    assert np.array_equal(streamed.logits, score_clips(whole.crops, starts, backend))
    assert streamed.frames == whole.frames and streamed.problem is None
    assert streamed.frames_with_face == len(whole.crops)
    assert streamed.longest_run == max(stop - start for start, stop in whole.runs)


def stream_through(scorer: StreamScorer, crops: np.ndarray, runs: list[int]) -> int:
    """Push every crop; the most crops the scorer held at once."""
    most = 0
    for index, (crop, run) in enumerate(zip(crops, runs, strict=True)):
        scorer.push(index / 25, crop, run)
        most = max(most, scorer.buffered)
    return most


@pytest.mark.parametrize(("stride", "frames"), [(25, 3000), (5, 800)])
def test_a_long_run_is_scored_in_bounded_memory(backend, tmp_path, stride, frames):
    path = tmp_path / "long.npy"
    rng = np.random.default_rng(stride)
    np.save(path, rng.integers(0, 256, (frames, 96, 96), dtype=np.uint8))
    source = CropsFile(path)  # a memory map: not read into memory at once
    batch = 8
    scorer = StreamScorer(backend, stride, batch=batch)
    most = stream_through(scorer, source.crops, [0] * frames)
    assert most <= batch * stride + CLIP_FRAMES
    starts = clip_starts(((0, frames),), stride)
    whole = score_clips(np.load(path), starts, backend, batch=batch)
    assert len(whole) > 10 * batch and np.array_equal(scorer.finish(), whole)
    assert scorer.clip_times == [s / 25 for s in starts]


def test_clips_restart_with_each_run_and_short_runs_give_none(backend):
    lengths = [30, 24, 1, 80, 25, 49]  # frames per run; runs of 24 and 1 hold no clip
    runs = [run for run, length in enumerate(lengths) for _ in range(length)]
    crops = np.random.default_rng(1).integers(0, 256, (len(runs), 96, 96), dtype=np.uint8)
    bounds = np.cumsum([0, *lengths])
    starts = clip_starts(tuple(zip(bounds[:-1], bounds[1:], strict=True)), 10)
    scorer = StreamScorer(backend, 10, batch=3)
    assert stream_through(scorer, crops, runs) < 3 * (10 + 24)
    assert np.array_equal(scorer.finish(), score_clips(crops, starts, backend, batch=3))
    assert scorer.clip_times == [s / 25 for s in starts] and scorer.longest_run == 80
