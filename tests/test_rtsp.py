"""RtspSource against a real RTSP server on 127.0.0.1 (gst-rtsp-server serving talking.mp4)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engines.backends import TorchBackend
from errors import LipForensicsError
from stream.backoff import backoff_delays
from stream.events import Frame, StreamStatus
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.base import ignore_status
from stream.sources.open import open_source
from stream.sources.rtsp import RtspSource, Timeline
from stream.sources.urls import redact
from tests.clip_builder import decode, write_clip
from tests.live_support import TALKING, free_port, narrow_model, run
from tests.rtsp_support import RtspServer, require_rtsp_server

NO_FACE = Path(__file__).parent / "data" / "no_face.mp4"  # 480 x 270


@pytest.fixture(scope="module", autouse=True)
def _rtsp_server_available() -> None:
    require_rtsp_server()


async def take(frames: AsyncIterator[Frame], count: int) -> list[Frame]:
    return [await anext(frames) for _ in range(count)]


def test_rtsp_frames_arrive_as_rgb_with_increasing_pts() -> None:
    events: list[StreamStatus] = []

    async def main() -> list[Frame]:
        with RtspServer(TALKING) as server:
            source = RtspSource(server.url, "cam")
            frames = source.frames(events.append)
            got = await take(frames, 30)
            await source.close()
            assert [frame async for frame in frames] == []  # closing ends the iteration
            return got

    frames = run(main(), events=events)
    assert all(frame.image.shape == (300, 400, 3) and frame.stream_id == "cam" for frame in frames)
    pts = [frame.pts for frame in frames]
    assert pts == sorted(set(pts))
    assert 0.9 < pts[-1] - pts[0] < 1.5  # 29 intervals of a 25 fps camera
    assert [event.status for event in events] == ["connected", "ended"]


def test_a_looping_server_plays_on_without_gaps_and_serves_the_next_client(
    tmp_path: Path,
) -> None:
    """Four loops of a one-second clip reach the first client without a gap in time; a
    second client of the same server process gets frames as well (regression: the server
    once shifted its clip's own timestamps on every loop and for every later client)."""
    clip = write_clip(tmp_path / "one_second.mp4", decode(TALKING, (400, 300))[:25], (400, 300))
    events: list[StreamStatus] = []

    async def main() -> tuple[list[Frame], list[Frame]]:
        with RtspServer(clip) as server:
            first = RtspSource(server.url, "first")
            try:
                looped = await take(first.frames(events.append), 110)
            finally:
                await first.close()
            second = RtspSource(server.url, "second")
            try:
                return looped, await take(second.frames(events.append), 25)
            finally:
                await second.close()

    looped, later = run(main(), events=events)
    steps = [b.pts - a.pts for a, b in itertools.pairwise(looped)]
    assert min(steps) > 0 and max(steps) < 0.05, (min(steps), max(steps))  # 25 fps, no gap
    assert len(later) == 25
    assert [event.status for event in events] == ["connected", "ended"] * 2


def test_rtsp_reconnects_after_the_server_is_killed_and_comes_back() -> None:
    events: list[StreamStatus] = []

    async def main() -> tuple[list[Frame], RtspSource]:
        server = RtspServer(TALKING)
        server.start()
        source = RtspSource(server.url, "cam", max_backoff=1.0)
        frames = source.frames(events.append)
        try:
            got = await take(frames, 25)
            server.kill()
            server.start()  # same port
            while source.reconnects == 0:
                got.append(await anext(frames))
            got += await take(frames, 25)  # frames keep coming on the new connection
        finally:
            await source.close()
            server.kill()
        return got, source

    frames, source = run(main(), events=events)
    statuses = [event.status for event in events]
    assert statuses[0] == "connected"
    assert "disconnected" in statuses and "reconnecting" in statuses
    assert statuses.count("connected") == 2 and source.reconnects == 1
    assert "(reconnected)" in events[statuses.index("connected", 1)].detail
    pts = [frame.pts for frame in frames]
    assert pts == sorted(set(pts))  # time keeps going forward across the reconnect
    steps = [later - earlier for earlier, later in itertools.pairwise(pts)]
    assert max(steps) > 0.2  # and the outage shows as a gap, not stretched over


class FirstAfterReconnect:
    """An RTSP source that notes the pts of its first frame after a reconnect."""

    live = True

    def __init__(self, camera: RtspSource) -> None:
        self.camera, self.stream_id = camera, camera.stream_id
        self.pts: float | None = None

    async def frames(self, on_status=ignore_status) -> AsyncIterator[Frame]:
        async for frame in self.camera.frames(on_status):
            if self.camera.reconnects and self.pts is None:
                self.pts = frame.pts
            yield frame

    async def close(self) -> None:
        await self.camera.close()


def test_the_pipeline_keeps_scoring_a_camera_across_a_server_restart() -> None:
    async def main() -> tuple[list[dict], float]:
        pipeline = Pipeline(Settings.of(jsonl=None), TorchBackend(narrow_model()))
        events = pipeline.subscribe()
        first = asyncio.ensure_future(anext(events))
        server = RtspServer(TALKING)
        camera = RtspSource(server.start(), "cam", max_backoff=1.0)
        source = FirstAfterReconnect(camera)
        pipeline.add_source(source)
        try:
            seen = [(await first).to_dict()]
            while seen[-1]["type"] != "verdict":
                seen.append((await anext(events)).to_dict())
            server.kill()
            server.start()
            while not (  # a window of frames from the new connection is scored
                seen[-1]["type"] == "verdict"
                and source.pts is not None
                and seen[-1]["pts"][0] >= source.pts
            ):
                seen.append((await anext(events)).to_dict())
        finally:
            server.kill()
            await pipeline.stop(drain=True)
        return seen, source.pts

    seen, reconnected_at = run(main())
    reconnected_at = round(reconnected_at, 6)  # as event times are written (to the microsecond)
    assert any(e.get("status") == "connected" and "(reconnected)" in e["detail"] for e in seen)
    assert {event["stream"] for event in seen} == {"cam"}
    before = [e for e in seen if e["type"] == "verdict" and e["pts"][0] < reconnected_at]
    assert before and all(e["pts"][1] <= reconnected_at for e in before)  # no window spans it


def test_a_stalled_server_trips_the_read_timeout_and_the_source_reconnects() -> None:
    events: list[StreamStatus] = []
    reconnected = asyncio.Event()

    def on_status(event: StreamStatus) -> None:
        events.append(event)
        if event.status == "connected" and "(reconnected)" in event.detail:
            reconnected.set()

    async def main() -> None:
        with RtspServer(TALKING, stall_after=1.0) as server:
            source = RtspSource(server.url, "cam", read_timeout=1.0)
            frames = source.frames(on_status)
            reader = asyncio.ensure_future(take(frames, 10_000))
            await asyncio.wait(
                (reader, asyncio.ensure_future(reconnected.wait())),
                return_when=asyncio.FIRST_COMPLETED,
            )
            await source.close()
            reader.cancel()

    run(main(), events=events)
    disconnects = [event for event in events if event.status == "disconnected"]
    assert disconnects and "timeout" in disconnects[0].detail
    assert any(event.status == "connected" and "(reconnected)" in event.detail for event in events)


def test_a_corrupt_stream_keeps_delivering_frames_without_reconnecting() -> None:
    events: list[StreamStatus] = []

    async def main() -> list[Frame]:
        with RtspServer(TALKING, corrupt=3) as server:
            source = RtspSource(server.url, "cam")
            try:
                return await take(source.frames(events.append), 60)
            finally:
                await source.close()

    frames = run(main(), events=events)
    assert len(frames) == 60 and all(frame.image.shape == (300, 400, 3) for frame in frames)
    assert [event.status for event in events] == ["connected", "ended"]  # no disconnect


def test_a_mid_stream_change_of_resolution_is_followed() -> None:
    events: list[StreamStatus] = []

    async def main() -> list[Frame]:
        with RtspServer(NO_FACE, TALKING) as server:
            source = RtspSource(server.url, "cam")
            frames = source.frames(events.append)
            try:
                got = [await anext(frames)]
                while got[-1].image.shape != (300, 400, 3):
                    got.append(await anext(frames))
                return got + await take(frames, 10)
            finally:
                await source.close()

    frames = run(main(), events=events)
    shapes = [frame.image.shape for frame in frames]
    assert shapes[0] == (270, 480, 3) and shapes[-1] == (300, 400, 3)
    pts = [frame.pts for frame in frames]
    assert pts == sorted(set(pts))
    assert [event.status for event in events] == ["connected", "ended"]


def test_an_unreachable_camera_reports_errors_retries_and_hides_the_password() -> None:
    events: list[StreamStatus] = []
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/stream"

    async def main() -> None:
        source = RtspSource(url, max_backoff=0.2)
        reader = asyncio.ensure_future(take(source.frames(events.append), 1))
        while sum(event.status == "error" for event in events) < 2:
            await asyncio.sleep(0.05)
        await source.close()
        with pytest.raises(StopAsyncIteration):
            await reader

    run(main(), events=events)
    statuses = [event.status for event in events]
    assert statuses[:4] == ["error", "reconnecting", "error", "reconnecting"]
    assert statuses[-1] == "ended"
    assert "refused" in events[0].detail.lower()
    assert events[0].stream == "127.0.0.1/stream"
    assert not any("hunter2" in event.detail or "admin" in event.detail for event in events)


def test_a_camera_that_accepts_but_never_answers_times_out_and_leaks_no_thread() -> None:
    """A hung camera whose TCP port still accepts: each attempt ends at the open timeout
    with a reason that says so, and the reader threads do not pile up."""
    events: list[StreamStatus] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts; nobody ever answers
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/stream"

        async def main() -> int:
            source = RtspSource(url, open_timeout=1.0, max_backoff=0.2)
            reader = asyncio.ensure_future(take(source.frames(events.append), 1))
            while sum(event.status == "error" for event in events) < 3:
                await asyncio.sleep(0.05)
            threads = sum(thread.name.startswith("rtsp ") for thread in threading.enumerate())
            await source.close()
            with pytest.raises(StopAsyncIteration):
                await reader
            return threads

        assert run(main(), events=events) <= 1
    errors = [event.detail for event in events if event.status == "error"]
    assert errors[:3] == ["cannot connect: no answer within 1 s (timeout)"] * 3


@pytest.mark.parametrize(
    ("url", "transport"),
    [("http://127.0.0.1/x", "tcp"), ("rtsp:///nohost", "tcp"), ("rtsp://127.0.0.1/x", "quic")],
)
def test_bad_rtsp_addresses_and_transports_are_refused_in_one_line(
    url: str, transport: str
) -> None:
    with pytest.raises(LipForensicsError) as error:
        RtspSource(url, transport=transport)
    assert "\n" not in str(error.value)


def test_redact_drops_credentials_only() -> None:
    assert redact("rtsp://u:p@cam:554/live") == "rtsp://***@cam:554/live"
    assert redact("rtsp://cam:554/live") == "rtsp://cam:554/live"


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    delays = backoff_delays(0.5, 4.0)
    got = [next(delays) for _ in range(8)]
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(got, caps, strict=True))
    assert len(set(got)) == len(got)  # jittered, not lockstep


def test_timeline_continues_after_a_reconnect_and_never_goes_back() -> None:
    timeline = Timeline()
    first = [timeline.map(pts, 100.0 + pts) for pts in (5.0, 5.04, 5.08)]
    assert first == [5.0, 5.04, 5.08]  # the camera's own time on the first connection
    timeline.new_connection()
    resumed = timeline.map(0.0, 110.0)  # new connection, clock restarted, 10 s later
    assert resumed == pytest.approx(5.08 + (110.0 - 105.08))  # the outage is a gap
    assert timeline.map(0.04, 110.04) == pytest.approx(resumed + 0.04)
    assert timeline.map(0.0, 110.08) > resumed + 0.04  # a step back is pushed forward
    assert timeline.map(None, 110.12) > resumed + 0.08  # unknown time: one frame later


def test_an_upper_case_scheme_reaches_the_camera() -> None:
    events: list[StreamStatus] = []

    async def main() -> list[Frame]:
        with RtspServer(TALKING) as server:
            source = open_source(server.url.replace("rtsp://", "RTSP://"), "cam")
            frames = await take(source.frames(events.append), 3)
            await source.close()
            return frames

    assert len(run(main(), events=events)) == 3
    assert events[0].status == "connected"


def test_give_up_after_is_kept_to_the_tenth_of_a_second() -> None:
    """The last backoff wait is cut to the time left, so the source gives up at the limit
    rather than after a full backoff delay beyond it."""
    events: list[StreamStatus] = []
    url = f"rtsp://127.0.0.1:{free_port()}/stream"

    async def main() -> None:
        source = RtspSource(url, give_up_after=3.0)
        assert [frame async for frame in source.frames(events.append)] == []

    run(main(), events=events)
    assert events[-2].status == "error" and events[-1].status == "ended"
    assert events[-2].detail.startswith("gave up after 3.0 s without a connection: ")
