"""The live pipeline end to end: real video, real MediaPipe, the real (narrow) network.

One pipeline runs four file streams at once (25, 24 and 30 fps, and two faces side by
side); the tests check what came out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from engines.method import normalise_crops
from stream.alerts.policy import Level, PolicyConfig
from stream.events import Alert, Connection, FaceEnded, StreamStatus, Verdict
from stream.faces.reader import extract_mouth_crops
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.files import FileSource
from tests.clip_builder import decode, write_clip
from tests.live_support import (
    TALKING,
    CountingBackend,
    ListSink,
    SlowBackend,
    clip_logit,
    narrow_model,
    record_batch_streams,
)
from tests.live_support import run as run_async

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data"
#: the narrow random network's logits are about 0.149 on every window: alert on them
EASY_ALERTS = PolicyConfig(suspicious_logit=0.0, alert_logit=0.1, escalate_windows=3)
STREAMS = {
    "talking": "talking.mp4",
    "fps24": "talking_24fps.mp4",
    "fps30": "talking_30fps.mp4",
    "pair": "two_faces.mp4",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run all four streams through one pipeline at stride 5; return the sink and pipeline.
    The two-face clip plays at twice its size: its 74 px faces are below the size floor,
    whose windows cannot alert (tests/test_window_quality.py)."""
    sink = ListSink()
    backend = CountingBackend(narrow_model())
    pipeline = Pipeline(Settings.of(stride=5), backend, sinks=[sink], policy=EASY_ALERTS)
    pair = tmp_path_factory.mktemp("pair") / "two_faces_x2.mp4"
    write_clip(pair, decode(DATA / STREAMS["pair"], (960, 360)), (960, 360))
    paths = {**{name: DATA / file for name, file in STREAMS.items()}, "pair": pair}

    async def main():
        for name, path in paths.items():
            pipeline.add_source(FileSource(path, name))
        await pipeline.run_until_sources_end()

    asyncio.run(main())
    return sink, pipeline


def assert_windows(sink: ListSink, stream: str, count: int, face: int = 0) -> None:
    """The face's verdicts cover windows starting every 0.2 s from 0, ``count`` of them."""
    pts = [v.pts for v in sink.of(Verdict, stream) if v.face == face]
    expected = [[k * 0.2, k * 0.2 + 1.0] for k in range(count)]
    np.testing.assert_allclose(np.array(pts).reshape(-1, 2), expected, atol=1e-6)


def test_verdicts_every_stride_with_the_window_pts_in_source_time(run):
    sink, _ = run
    assert_windows(sink, "talking", 16)  # 100 frames: windows start at frames 0, 5, .. 75
    verdict = sink.of(Verdict, "talking")[0]
    assert set(verdict.to_dict()) >= {
        "type",
        "stream",
        "face",
        "pts",
        "wall_time",
        "logit",
        "level",
    }
    assert 0.0 < verdict.probability < 1.0
    assert isinstance(verdict.level, Level)


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_ended_is_each_streams_last_event_after_all_its_verdicts(run, stream):
    sink, _ = run
    events = [e for e in sink.events if e.stream == stream]
    assert any(isinstance(e, Verdict) for e in events)
    last = events[-1]
    assert isinstance(last, StreamStatus) and last.status is Connection.ENDED
    assert sum(e.status is Connection.ENDED for e in sink.of(StreamStatus, stream)) == 1
    assert sink.of(FaceEnded, stream) == []  # no face left the picture before the end


@pytest.mark.parametrize("stream", ["fps24", "fps30"])
def test_24_and_30_fps_inputs_give_25_fps_windows(run, stream):
    """3.0 s of video = 75 frames at 25 fps = windows starting every 0.2 s up to 2.0 s."""
    sink, _ = run
    assert_windows(sink, stream, 11)


def test_two_faces_in_one_stream_are_scored_separately(run):
    sink, _ = run
    faces = {v.face for v in sink.of(Verdict, "pair")}
    assert faces == {0, 1}
    assert_windows(sink, "pair", 6, face=0)  # 50 frames: windows start at 0, 5, .. 25
    assert_windows(sink, "pair", 6, face=1)
    logits = {v.face: v.logit for v in sink.of(Verdict, "pair")}
    assert logits[0] != logits[1]


def test_streams_share_backend_batches():
    """Two streams and an engine slower than their faces come (0.25 s per encoder call):
    the windows that wait meanwhile, from both streams, go to the backend together, so
    one head call holds windows of two streams."""
    backend = SlowBackend(narrow_model(), delay=0.25)
    pipeline = Pipeline(Settings.of(stride=5, jsonl=None), backend)
    record_batch_streams(pipeline.scheduler)

    async def main():
        for name in ("talking", "fps30"):
            pipeline.add_source(FileSource(DATA / STREAMS[name], name))
        await pipeline.run_until_sources_end()

    run_async(main(), timeout=120)
    calls = backend.head_streams
    assert calls and len(calls) == len(backend.head_batches)  # every head call recorded
    shared = [streams for streams in calls if len(set(streams)) > 1]
    assert shared, f"no head call held windows of two streams; streams per call: {calls}"


def test_status_events_and_metrics_per_stream(run):
    sink, pipeline = run
    for name in STREAMS:
        statuses = [e.status for e in sink.of(StreamStatus, name)]
        assert statuses == [Connection.CONNECTED, Connection.ENDED]
    text = pipeline.metrics_text().decode()
    assert 'lipforensics_frames_total{stream="fps30"} 90.0' in text
    assert 'lipforensics_windows_scored_total{stream="pair"} 12.0' in text
    assert pipeline.metrics.value("lipforensics_frames_dropped_total", stream="talking") == 0
    health = pipeline.health()
    assert health["status"] == "ok"
    assert health["streams"]["talking"]["windows_scored"] == 16
    assert sink.closed


def test_live_logits_equal_the_whole_network_on_the_offline_crops(run):
    """The live path (per-track landmarks without look-ahead, frame-once encoding) gives,
    window by window, the full network's logit on the crops the offline extractor makes
    with the same smoothing."""
    sink, _ = run
    crops = extract_mouth_crops(TALKING, smoothing="none")
    assert len(crops.crops) == 100
    frames = normalise_crops(crops.crops)
    model = narrow_model()  # the same seeded weights the pipeline ran with
    for verdict in sink.of(Verdict, "talking"):
        first = round(verdict.pts[0] * 25)
        expected = clip_logit(model, frames[first : first + 25])
        assert verdict.logit == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_each_face_alerts_once_with_a_unique_id_after_sustained_windows(run):
    sink, pipeline = run
    alerts = sink.of(Alert)
    faces = {(v.stream, v.face) for v in sink.of(Verdict)}
    assert sorted((a.stream, a.verdict.face) for a in alerts) == sorted(faces)
    assert len({a.id for a in alerts}) == len(alerts)
    for alert in alerts:
        face = alert.verdict.face
        third = [v for v in sink.of(Verdict, alert.stream) if v.face == face][2]
        assert alert.verdict == third  # the third window took the face to ALERT
        assert third.level is Level.ALERT and third.pts == pytest.approx((0.4, 1.4))
    changes = pipeline.metrics.value("lipforensics_alerts_total", stream="pair", level="alert")
    assert changes == 2


def test_the_health_report_gives_each_faces_verdict_interval(run):
    """The interval between a face's verdicts, per stream, as /healthz shows it (0.2 s at
    stride 5; longer while a crowded stream's faces take turns), no turns here, and the
    frame rate each source delivered."""
    _, pipeline = run
    streams = pipeline.health()["streams"]
    assert streams["talking"]["verdict_intervals"] == {"0": pytest.approx(0.2)}
    assert streams["pair"]["verdict_intervals"] == {
        "0": pytest.approx(0.2),
        "1": pytest.approx(0.2),
    }
    assert all(stream["faces_at_once"] is None for stream in streams.values())
    # the rate the source delivered, before the 25 fps clock
    assert streams["fps24"]["input_fps"] == pytest.approx(24.0, abs=0.2)
    assert streams["fps30"]["input_fps"] == pytest.approx(30.0, abs=0.2)
