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
    (bug,) = sink.of(StreamStatus, "bug")
    assert bug.status is Connection.ERROR and bug.detail == "internal error: RuntimeError: boom"
    (bad,) = sink.of(StreamStatus, "bad")
    assert bad.status is Connection.ERROR and bad.detail == "stream went away"
    assert len(sink.of(Verdict, "good")) == 4
    assert pipeline.health()["status"] == "degraded"
