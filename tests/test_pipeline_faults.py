"""A fault in one stream ends that stream only, with a status event that says why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from errors import MediaError
from stream.events import Connection, Frame, StreamStatus, Verdict
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.files import FileSource
from tests.clip_builder import garbled
from tests.live_support import (
    TALKING,
    CountingBackend,
    ListSink,
    MemorySource,
    narrow_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data"


class BrokenSource(MemorySource):
    """Hands over a few frames, then fails with ``error``."""

    live = False

    def __init__(self, stream_id: str, error: Exception) -> None:
        super().__init__(DATA / "no_face.mp4", stream_id)
        self.error = error

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        for frame in self._frames[:3]:
            yield frame
        raise self.error


def test_a_failing_source_ends_its_stream_with_an_error_and_the_others_go_on():
    sink = ListSink()
    pipeline = Pipeline(Settings.of(stride=25), CountingBackend(narrow_model()), sinks=[sink])

    async def main():
        pipeline.add_source(BrokenSource("bug", RuntimeError("boom")))
        pipeline.add_source(BrokenSource("bad", MediaError("stream went away")))
        pipeline.add_source(FileSource(TALKING, "good"))
        await pipeline.run_until_sources_end()

    asyncio.run(main())
    bug, ended = sink.of(StreamStatus, "bug")
    assert bug.status is Connection.ERROR and bug.detail == "internal error: RuntimeError: boom"
    bad, ended = sink.of(StreamStatus, "bad")
    assert bad.status is Connection.ERROR and bad.detail == "stream went away"
    assert ended.status is Connection.ENDED
    assert len(sink.of(Verdict, "good")) == 4
    assert pipeline.health()["status"] == "degraded"


def test_a_file_corrupted_mid_way_ends_its_stream_with_ended_after_its_last_verdict(
    tmp_path, faststart
):
    sink = ListSink()
    pipeline = Pipeline(Settings.of(stride=5), CountingBackend(narrow_model()), sinks=[sink])
    clip = garbled(faststart, tmp_path / "garbled.mp4", start=60_000)  # 48 frames decode

    async def main():
        pipeline.add_source(FileSource(clip, "garbled"))
        pipeline.add_source(BrokenSource("bug", RuntimeError("boom")))
        await pipeline.run_until_sources_end()

    asyncio.run(main())
    for stream in ("garbled", "bug"):
        events = [e for e in sink.events if getattr(e, "stream", None) == stream]
        statuses = [e.status for e in events if isinstance(e, StreamStatus)]
        assert Connection.ERROR in statuses and statuses.count(Connection.ENDED) == 1
        assert isinstance(events[-1], StreamStatus) and events[-1].status is Connection.ENDED
    assert sink.of(Verdict, "garbled") and pipeline.failed_streams == 2
