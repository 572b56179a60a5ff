"""Sinks: JSON lines, a webhook against a real HTTP receiver on loopback, subscribers."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from stream.alerts.broadcast import Broadcast
from stream.alerts.sinks import JsonlSink, WebhookSink
from stream.events import StatusEvent, Verdict


def alert(number: int) -> dict[str, object]:
    verdict = Verdict("cam", 0, (number, number + 1.0), 3.0, 0.95, "alert", 12.0)
    return {**verdict.to_dict(), "type": "alert", "id": f"alert-{number}"}


def test_jsonl_sink_writes_one_object_per_line(tmp_path):
    path = tmp_path / "events.jsonl"
    sink = JsonlSink(path)
    verdict = Verdict("cam", 1, (0.0, 1.0), -2.0, 0.12, "clear", 40.0)
    sink.send(verdict.to_dict())
    sink.send(StatusEvent("cam", "ended").to_dict())
    asyncio.run(sink.close())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["pts"] == [0.0, 1.0] and lines[0]["type"] == "verdict"
    assert "id" not in lines[0]
    assert lines[1] == {**lines[1], "type": "status", "status": "ended", "stream": "cam"}


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
        sink.send(Verdict("cam", 0, (0.0, 1.0), 0.1, 0.5, "clear", 1.0).to_dict())  # not sent
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
            broadcast.send({"type": "verdict", "n": number})
        got = [(await first)["n"]]
        await broadcast.close()
        got += [event["n"] async for event in events]
        return broadcast, got

    broadcast, got = asyncio.run(main())
    assert got == [6, 7, 8, 9]
    assert broadcast.dropped == 6
    assert broadcast.subscribers == 0
