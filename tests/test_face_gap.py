"""A face, then two minutes with no face at all, then a face again: the first face's state is
freed during the gap, memory stays flat, and windows resume when the face comes back."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from stream.events import Connection, FaceEnded, StreamStatus, Verdict
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.files import FileSource
from tests.clip_builder import decode, looped, write_clip
from tests.live_support import (
    TALKING,
    CountingBackend,
    ListSink,
    narrow_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data"
GAP_FRAMES = 25 * 120  # two minutes without a face
SIZE = (400, 300)


def rss_bytes() -> int:
    """Resident memory of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def gap_clip(tmp_path_factory) -> Path:
    """talking.mp4 (4 s), no_face.mp4 looped for GAP_FRAMES frames, talking.mp4 again; 25 fps."""
    talking, empty = decode(TALKING, SIZE), decode(DATA / "no_face.mp4", SIZE)
    path = tmp_path_factory.mktemp("gap") / "gap.mp4"
    return write_clip(path, talking + looped(empty, GAP_FRAMES) + talking, SIZE)


def test_windows_resume_after_minutes_without_a_face(gap_clip):
    settings = Settings.of(stride=25, jsonl=None)
    sink = ListSink()
    pipeline = Pipeline(settings, CountingBackend(narrow_model()), sinks=[sink])

    async def main() -> list[dict]:
        source = FileSource(gap_clip, "cam")
        task = pipeline.add_source(source)
        stream = pipeline.workers["cam"]
        samples = []
        while not task.done():
            samples.append(
                {
                    "read": pipeline.metrics.value("lipforensics_frames_total", stream="cam"),
                    "faces": len(stream.windows),
                    "cached": len(pipeline.scheduler._caches),
                    "rss": rss_bytes(),
                }
            )
            await asyncio.sleep(0.05)
        await pipeline.run_until_sources_end()
        return samples

    samples = asyncio.run(main())
    ids = {0: [], 1: []}
    for verdict in sink.of(Verdict, "cam"):
        ids.setdefault(verdict.face, []).append(verdict.pts)
    gap_end = 4.0 + GAP_FRAMES / 25
    assert ids[0] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)]
    assert ids[1] == [(gap_end + k, gap_end + k + 1) for k in range(4)]  # a new track
    assert set(ids) == {0, 1}
    statuses = [e.status for e in sink.of(StreamStatus, "cam")]
    assert statuses == [Connection.CONNECTED, Connection.ENDED]
    # the first face left during the gap, once, after its last verdict; the second stays
    (left,) = sink.of(FaceEnded, "cam")
    order = [e for e in sink.events if isinstance(e, Verdict | FaceEnded)]
    assert left.face == 0 and order.index(left) == len(ids[0])
    assert 4.0 < left.pts < gap_end

    # Well inside the gap (frames read run at most the file queue plus one ahead of the
    # face stage): no face state, no cached features.
    faces = settings.faces
    first_free = 100 + faces.forget_frames + faces.hold_frames + 2 * faces.window + 10
    inside = [s for s in samples if first_free <= s["read"] <= 100 + GAP_FRAMES]
    assert len(inside) > 10
    assert all(s["faces"] == 0 and s["cached"] == 0 for s in inside)
    # Two minutes of frames (about 1 GB decoded) went through: none of them were kept.
    assert inside[-1]["rss"] - inside[0]["rss"] < 64 * 2**20
