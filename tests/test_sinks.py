"""Sinks: JSON lines, a webhook against a real HTTP receiver on loopback, subscribers."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from stream.alerts.broadcast import Broadcast
from stream.alerts.policy import Level
from stream.alerts.sinks import JsonlSink, WebhookSink
from stream.events import (
    Alert,
    Availability,
    BackendStatus,
    Connection,
    FaceEnded,
    StreamStatus,
    Verdict,
)


def alert(number: int) -> Alert:
    verdict = Verdict("cam", 0, (number, number + 1.0), 3.0, 0.95, Level.ALERT, 12.0)
    return Alert(verdict, f"alert-{number}")


def test_jsonl_sink_writes_one_object_per_line_with_times_to_the_microsecond(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path)
    pts = (0.4, 0.4 + 1.0)  # 1.4000000000000001 in binary
    sink.send(Verdict("cam", 1, pts, -2.0, 0.12, Level.CLEAR, 40.0, wall_time=1.23456789))
    sink.send(alert(7))
    sink.send(FaceEnded("cam", 1, 2.0000001, wall_time=2.0))
    sink.send(StreamStatus("cam", Connection.ENDED))
    sink.send(BackendStatus("triton", Availability.DEGRADED, "gone", wall_time=3.0))
    asyncio.run(sink.close())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == [
        "verdict",
        "alert",
        "face_ended",
        "status",
        "backend",
    ]
    assert lines[0]["pts"] == [0.4, 1.4] and lines[0]["wall_time"] == 1.234568
    assert lines[0]["level"] == "clear" and "id" not in lines[0]
    assert lines[1]["id"] == "alert-7" and lines[1]["level"] == "alert"
    assert list(lines[1]) == [*lines[0], "id"]  # a verdict's keys, then the id
    assert lines[2] == {"stream": "cam", "face": 1, "pts": 2.0, "wall_time": 2.0,
                        "type": "face_ended"}  # fmt: skip
    assert lines[3] == {**lines[3], "type": "status", "status": "ended", "stream": "cam"}
    assert lines[4] == {"backend": "triton", "status": "degraded", "detail": "gone",
                        "wall_time": 3.0, "type": "backend"}  # fmt: skip
    assert "stream" not in lines[4]  # the node's, never a stream's


@pytest.mark.parametrize(
    "build",
    [
        lambda: Verdict("cam", 0, (0.0, 1.0), 3.0, 0.95, "alert", 12.0),
        lambda: StreamStatus("cam", "ended"),
        lambda: BackendStatus("triton", "ok", ""),
    ],
)
def test_an_event_refuses_a_string_where_an_enum_belongs(build):
    with pytest.raises(TypeError, match="must be a"):
        build()


async def receiver(failures: int) -> tuple[web.AppRunner, str, list[dict], list[int]]:
    """A webhook receiver on 127.0.0.1 that answers 503 to the first ``failures`` POSTs."""
    received: list[dict] = []
    answers: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        status = 503 if len(answers) < failures else 204
        answers.append(status)
        if status == 204:
            received.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook", received, answers


def test_webhook_retries_with_backoff_and_delivers_alerts_in_order():
    async def main():
        runner, url, received, answers = await receiver(failures=2)
        sink = WebhookSink(url, backoff=0.01)
        sink.send(Verdict("cam", 0, (0.0, 1.0), 0.1, 0.5, Level.CLEAR, 1.0))  # not sent
        for number in range(3):
            sink.send(alert(number))
        await sink.close(grace=10.0)
        await runner.cleanup()
        return sink, received, answers

    sink, received, answers = asyncio.run(main())
    assert [event["id"] for event in received] == ["alert-0", "alert-1", "alert-2"]
    assert answers == [503, 503, 204, 204, 204]
    assert (sink.delivered, sink.failed, sink.dropped) == (3, 0, 0)


def test_webhook_gives_up_after_its_attempts_when_the_receiver_is_down():
    async def main():
        runner, url, _, _ = await receiver(failures=0)
        await runner.cleanup()  # nothing listens there any more
        sink = WebhookSink(url, attempts=3, backoff=0.01)
        sink.send(alert(0))
        await sink.close(grace=10.0)
        return sink

    sink = asyncio.run(main())
    assert (sink.delivered, sink.failed) == (0, 1)


def test_a_slow_subscriber_loses_its_oldest_events_not_the_newest():
    async def main():
        broadcast = Broadcast(queue_size=4)
        events = broadcast.subscribe()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)  # the subscriber is registered once it waits
        for number in range(10):
            broadcast.send(FaceEnded("cam", number, 0.0))
        got = [(await first).face]
        await broadcast.close()
        got += [event.face async for event in events]
        return broadcast, got

    broadcast, got = asyncio.run(main())
    assert got == [6, 7, 8, 9]
    assert broadcast.dropped == 6
    assert broadcast.subscribers == 0
