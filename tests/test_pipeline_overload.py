"""Overload: the pipeline stays bounded, counts what it drops, and keeps scoring the newest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from stream import pipeline as pipeline_module
from stream.events import Verdict
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.base import Source
from stream.sources.files import FileSource
from tests.live_support import (
    TALKING,
    CountingBackend,
    ListSink,
    MemorySource,
    SlowBackend,
    narrow_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NO_FACE = Path(__file__).parent / "data" / "no_face.mp4"


@pytest.fixture(scope="module")
def model():
    return narrow_model()


async def run_watching(pipeline: Pipeline, source: Source) -> list[dict]:
    """Run one source to its end; sample the queues and health while it runs."""
    samples = []
    pipeline.add_source(source)
    stream = pipeline.workers[source.stream_id]
    finished = asyncio.create_task(pipeline.run_until_sources_end())
    while not finished.done():
        samples.append(
            {
                "backlog": pipeline.scheduler.backlog,
                "frames": stream.queue.qsize(),
                "bytes": stream.queue.bytes,
                "health": pipeline.health()["status"],
            }
        )
        await asyncio.sleep(0.01)
    await finished
    return samples


def test_a_slow_backend_drops_the_oldest_windows_and_scores_the_newest(model):
    """A camera-paced source and an engine far slower than 25 windows/s (stride 1)."""
    settings = Settings.of(stride=1, window_queue=2, prefetch_queue=8, max_batch=8)
    sink = ListSink()
    pipeline = Pipeline(settings, SlowBackend(model, delay=0.3), sinks=[sink])
    source = FileSource(TALKING, "cam", realtime=True)
    samples = asyncio.run(run_watching(pipeline, source))

    dropped = pipeline.scheduler.dropped_windows["cam"]
    verdicts = sink.of(Verdict, "cam")
    assert dropped > 0
    assert pipeline.metrics.value("lipforensics_windows_dropped_total", stream="cam") == dropped
    assert len(verdicts) == pipeline.metrics.value(
        "lipforensics_windows_scored_total", stream="cam"
    )
    assert max(s["backlog"] for s in samples) <= settings.engine.window_queue
    assert max(s["frames"] for s in samples) <= settings.sources.frame_queue
    assert "degraded" in {s["health"] for s in samples}
    assert verdicts[-1].pts[1] == pytest.approx(4.0)  # the clip's last window


def test_a_live_source_that_outruns_the_landmarks_loses_its_oldest_frames(model):
    """Frames arriving far faster than landmarks run: the backlog is dropped whole, so the
    frames that are scored stay consecutive and the newest windows still come out."""
    settings = Settings.of(stride=5, frame_queue=50)
    sink = ListSink()
    pipeline = Pipeline(settings, CountingBackend(model), sinks=[sink])
    samples = asyncio.run(run_watching(pipeline, MemorySource(TALKING, "burst")))

    # frames 0..49 fill the queue; frame 50 finds it full: 0..49 go, 50..99 are scored
    assert pipeline.metrics.value("lipforensics_frames_dropped_total", stream="burst") == 50
    assert max(s["frames"] for s in samples) <= settings.sources.frame_queue
    # the backlog is measured: the 50 frames kept each waited for the face stage, the last
    # one behind 49 others
    waits = "lipforensics_frame_wait_seconds"
    assert pipeline.metrics.value(f"{waits}_count", stream="burst") == 50
    assert pipeline.metrics.quantile(waits, 0.99, stream="burst") > 0.1
    pts = [verdict.pts for verdict in sink.of(Verdict, "burst")]
    np.testing.assert_allclose(pts, [[2.0 + k * 0.2, 3.0 + k * 0.2] for k in range(6)])


FRAME_BYTES = 300 * 400 * 3  # one decoded talking.mp4 frame


def test_a_live_source_is_also_bounded_by_the_bytes_of_its_frames(model):
    """Big frames (as from a 4K camera) must not fill memory: with room for four frames'
    bytes, at most four are held, whatever the frame count allows."""
    settings = Settings.of(stride=5, frame_queue=50, frame_queue_mb=4.5 * FRAME_BYTES / 2**20)
    pipeline = Pipeline(settings, CountingBackend(model), sinks=[ListSink()])
    samples = asyncio.run(run_watching(pipeline, MemorySource(TALKING, "burst")))
    assert max(s["frames"] for s in samples) <= 5  # four frames and the end marker
    assert 0 < max(s["bytes"] for s in samples) <= 4 * FRAME_BYTES
    assert pipeline.metrics.value("lipforensics_frames_dropped_total", stream="burst") > 50


def test_a_file_waits_for_room_instead_of_dropping_frames(model):
    """A file with room for one frame at a time: slower, but every window is scored."""
    settings = Settings.of(stride=25, frame_queue_mb=0.1)
    sink = ListSink()
    pipeline = Pipeline(settings, CountingBackend(model), sinks=[sink])
    samples = asyncio.run(run_watching(pipeline, FileSource(TALKING, "file")))
    assert max(s["frames"] for s in samples) <= 1
    assert pipeline.metrics.value("lipforensics_frames_dropped_total", stream="file") == 0
    assert [v.pts for v in sink.of(Verdict, "file")] == [
        (0.0, 1.0),
        (1.0, 2.0),
        (2.0, 3.0),
        (3.0, 4.0),
    ]


def test_ended_streams_are_forgotten_beyond_a_bound(model, monkeypatch):
    """A server sees many short streams over weeks: only the newest ended ones are kept."""
    monkeypatch.setattr(pipeline_module, "KEEP_ENDED", 2)
    pipeline = Pipeline(Settings(), CountingBackend(model), sinks=[])

    async def main():
        for number in range(4):
            await pipeline.add_source(MemorySource(NO_FACE, f"call{number}"))
        streams = set(pipeline.health()["streams"])
        await pipeline.stop()
        return streams

    assert asyncio.run(main()) == {"call2", "call3"}
    exposed = pipeline.metrics_text().decode()
    assert 'stream="call3"' in exposed and 'stream="call2"' in exposed
    assert 'stream="call0"' not in exposed and 'stream="call1"' not in exposed
