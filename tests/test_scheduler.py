"""The scheduler: exact logits from cached per-frame features, batching, bounded overload."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from engines.method import normalise_crops
from stream.windows.face_window import FaceWindow
from stream.windows.scheduler import Reply, Scheduler
from tests.live_support import (
    CountingBackend,
    SlowBackend,
    clip_logit,
    narrow_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return narrow_model()


def random_frames(count: int, seed: int) -> np.ndarray:
    crops = np.random.default_rng(seed).integers(0, 256, (count, 96, 96), dtype=np.uint8)
    return normalise_crops(crops)


async def score(
    scheduler: Scheduler, faces: dict[tuple[str, int], np.ndarray], stride: int, reply: Reply
):
    """Feed every face's frames through a FaceWindow into the scheduler, as a stream would;
    the scores go to ``reply``."""
    task = asyncio.create_task(scheduler.run())
    windows = {key: FaceWindow(*key, stride=stride) for key in faces}
    count = len(next(iter(faces.values())))
    for index in range(count):
        for key, frames in faces.items():
            jobs, complete = windows[key].push(index, index / 25, frames[index], 0.0)
            for job in jobs:
                scheduler.prefetch(job)
            for window in complete:
                await scheduler.put(window, reply)  # waits for room, never drops
        await asyncio.sleep(0)
    await scheduler.stop(drain=True)
    await task
    scheduler.close()


@pytest.mark.parametrize("stride", [5, 25])
def test_logits_from_cached_features_equal_the_whole_network(model, stride):
    """Two streams' faces share batches; every window's logit is the network's on that clip."""
    faces = {("a", 0): random_frames(60, 1), ("b", 3): random_frames(60, 2)}
    scored = []
    backend = CountingBackend(model)
    scheduler = Scheduler(backend)
    asyncio.run(score(scheduler, faces, stride, lambda w, logit: scored.append((w, logit))))
    expected_firsts = list(range(0, 36, stride))
    for key, frames in faces.items():
        mine = [(w, logit) for w, logit in scored if (w.stream_id, w.face) == key]
        assert [w.first for w, _ in mine] == expected_firsts
        for w, logit in mine:
            reference = clip_logit(model, frames[w.first : w.first + 25])
            assert logit == pytest.approx(reference, rel=1e-5, abs=1e-5)
    # frame-once: each frame encoded once, plus 4 edge variants per window (and the left
    # edges of the windows the clip ends too soon for)
    assert sum(backend.encode_batches) <= 2 * (60 + 4 * (len(expected_firsts) + 25 // stride))


def test_overload_drops_the_oldest_windows_and_scores_the_newest(model):
    """A backend slower than the input: the window queue stays at its bound, the drops are
    counted and said to the window's reply (None), and the last window submitted is scored."""
    backend = SlowBackend(model, delay=0.05)
    scored, dropped = [], []

    def reply(window, logit):
        (dropped if logit is None else scored).append(window)

    scheduler = Scheduler(backend, window_queue=2, prefetch_queue=4, max_batch=8)
    faces = {("cam", 0): random_frames(150, 3)}

    async def run():
        task = asyncio.create_task(scheduler.run())
        window = FaceWindow("cam", 0, stride=1)
        backlog = 0
        for index, frame in enumerate(faces["cam", 0]):
            jobs, complete = window.push(index, index / 25, frame, 0.0)
            for job in jobs:
                scheduler.prefetch(job)
            for w in complete:
                scheduler.submit(w, reply)
            backlog = max(backlog, scheduler.backlog)
            await asyncio.sleep(0.001)
        await scheduler.stop(drain=True)
        await task
        scheduler.close()
        return backlog

    assert asyncio.run(run()) <= 2
    submitted = 150 - 24
    assert scheduler.dropped_windows["cam"] > 0
    assert scheduler.dropped_windows["cam"] == len(dropped)
    assert len(dropped) + len(scored) == submitted
    assert (
        scheduler.metrics.value("lipforensics_windows_dropped_total", stream="cam")
        == (scheduler.dropped_windows["cam"])
    )
    assert scored[-1].first == 150 - 25
    assert max(backend.encode_batches) <= 8 + 25


def test_a_forgotten_face_keeps_no_features(model):
    scheduler = Scheduler(CountingBackend(model))
    asyncio.run(score(scheduler, {("a", 0): random_frames(30, 4)}, 5, lambda w, logit: None))
    assert scheduler._caches[("a", 0)]
    scheduler.forget("a", 0)
    assert ("a", 0) not in scheduler._caches


def test_stale_live_windows_give_way_to_the_newest(model):
    """Windows that waited longer than max_delay are dropped, but never the newest one."""
    scored = []
    scheduler = Scheduler(CountingBackend(model))
    window = FaceWindow("cam", 0, stride=5)
    frames = random_frames(35, 5)
    for index, frame in enumerate(frames):
        _, complete = window.push(index, index / 25, frame, arrival=time.monotonic() - 5.0)
        for w in complete:
            scheduler.submit(w, lambda w, logit: logit is None or scored.append(w.first))
            # live: deadline = arrival + 1 s, long past

    async def run():
        task = asyncio.create_task(scheduler.run())
        await scheduler.stop(drain=True)
        await task
        scheduler.close()

    asyncio.run(run())
    assert scored == [10]
    assert scheduler.dropped_windows["cam"] == 2
