"""The durable webhook outbox: on disk before delivery, in order, retried, bounded, and
every alert delivered exactly once across a SIGKILL of the detector (real CLI, real
receiver on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from errors import LipForensicsError
from stream.alerts.outbox import DELIVERED, REJECTED, Outbox, default_outbox_path
from stream.alerts.policy import Level
from stream.alerts.sinks import WebhookSink
from stream.events import Alert, Verdict
from tests.live_support import TALKING, free_port

ROOT = Path(__file__).resolve().parents[1]


class Receiver:
    """A webhook receiver on 127.0.0.1 that remembers every POST, in order.

    ``answers`` are the statuses of the first POSTs (then 200); ``delay`` seconds are
    waited before every answer (a slow receiver).
    """

    def __init__(self, answers: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.posts: list[tuple[str, int]] = []  # (event id, status answered)
        self._runner: web.AppRunner | None = None

    @property
    def taken(self) -> list[str]:
        """The ids answered with a 2xx, in order (duplicates included)."""
        return [event_id for event_id, status in self.posts if status < 300]

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        event = await request.json()
        await asyncio.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else 200
        self.posts.append((event["id"], status))
        return web.Response(status=status)


def alert_event(number: int) -> Alert:
    """The alert record with id ``alert-<number>``, as a sink gets it."""
    verdict = Verdict("cam", 0, (float(number), number + 1.0), 5.0, 0.99, Level.ALERT, 1.0)
    return Alert(verdict, f"alert-{number}")


def alert(number: int, with_id: bool = True) -> dict[str, object]:
    event: dict[str, object] = {"type": "alert", "stream": "cam", "face": 0, "n": number}
    if with_id:
        event["id"] = f"alert-{number}"
    return event


def test_rows_keep_their_order_and_ids_and_survive_reopening(tmp_path):
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    first = outbox.add(alert(0))
    second = outbox.add(alert(1, with_id=False))
    outbox.add(alert(0))  # the same id again is stored once
    assert first["id"] == "alert-0" and len(str(second["id"])) == 32
    seq, event = outbox.next_pending()
    assert event == first
    outbox.mark(seq, DELIVERED)
    outbox.close()

    reopened = Outbox(path)
    assert reopened.pending == 1
    seq, event = reopened.next_pending()
    assert event == second  # the generated id was stored with the event
    reopened.mark(seq, REJECTED)
    assert reopened.pending == 0 and reopened.next_pending() is None
    reopened.close()


def test_two_detectors_cannot_share_one_outbox(tmp_path):
    """A second process on the same outbox would send every alert twice: it is refused in
    one line while the first holds the file, and welcome once the first is gone."""
    path = tmp_path / "outbox.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OUTBOX, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(LipForensicsError, match="in use by another detector"):
            Outbox(path)
    finally:
        holder.kill()
        holder.wait()
    with Outbox(path) as outbox:  # the lock died with the process
        assert outbox.pending == 0


HOLD_OUTBOX = """
import sys, time
sys.path.insert(0, ".")
from stream.alerts.outbox import Outbox
outbox = Outbox(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_a_full_outbox_prunes_finished_rows_first_then_drops_the_oldest_pending(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", max_rows=3)
    for number in range(2):
        outbox.add(alert(number))
        seq, _ = outbox.next_pending()
        outbox.mark(seq, DELIVERED)
    for number in range(2, 5):
        outbox.add(alert(number))
    assert (outbox.pending, outbox.dropped) == (3, 0)  # the delivered rows made room
    outbox.add(alert(5))
    assert (outbox.pending, outbox.dropped) == (3, 1)
    assert outbox.next_pending()[1]["id"] == "alert-3"


def test_default_path_is_next_to_the_jsonl_file(tmp_path):
    events = tmp_path / "events.jsonl"
    assert default_outbox_path(str(events)) == tmp_path / "events.jsonl.outbox.sqlite"
    assert default_outbox_path("-").name == default_outbox_path(None).name


def test_an_outbox_for_json_lines_on_a_device_goes_to_the_state_folder(tmp_path, monkeypatch):
    """Issue 24, row 12: ``--jsonl /dev/null`` made ``/dev/null.outbox.sqlite`` (RAM, and
    "in use" for the next run); a device, a pipe or a folder is no place for a database."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    for jsonl in ("/dev/null", "/dev/stdout", "/dev/new.jsonl", str(fifo), str(tmp_path)):
        assert default_outbox_path(jsonl) == tmp_path / "state/lipforensics/webhook-outbox.sqlite"
        mqtt = default_outbox_path(jsonl, "mqtt")
        assert mqtt == tmp_path / "state/lipforensics/mqtt-outbox.sqlite"
    (tmp_path / "events.jsonl").write_text("")  # a plain file that exists: next to it
    assert default_outbox_path(str(tmp_path / "events.jsonl")).parent == tmp_path


def test_a_redirect_is_not_followed_and_the_alert_stays_pending(tmp_path):
    """Issue 24, row 4: a receiver answering 307 to another port had the alert POSTed there
    and the row marked delivered. A 3xx is a failed delivery: retried, never followed."""

    async def main():
        elsewhere = Receiver()
        target = await elsewhere.start()
        app = web.Application()
        redirects: list[int] = []

        async def redirect(request: web.Request) -> web.Response:
            redirects.append(1)
            raise web.HTTPTemporaryRedirect(target)

        app.router.add_post("/hook", redirect)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        sink = WebhookSink(
            f"http://127.0.0.1:{port}/hook",
            backoff=0.01,
            max_backoff=0.05,
            outbox=Outbox(tmp_path / "outbox.sqlite"),
        )
        sink.send(alert_event(1))
        await sink.close(grace=1.0)
        await runner.cleanup()
        await elsewhere.stop()
        return elsewhere, sink, len(redirects)

    elsewhere, sink, redirects = asyncio.run(main())
    assert redirects > 1  # retried
    assert elsewhere.posts == []
    assert (sink.delivered, sink.left_pending) == (0, 1)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert outbox.next_pending()[1]["id"] == "alert-1"


def test_a_failing_and_slow_receiver_gets_every_alert_later_in_order(tmp_path):
    """500, 503 and 429 answers and slow replies: retried with backoff until a 2xx; a final
    4xx (400) is not retried and does not hold up the events behind it."""

    async def main():
        receiver = Receiver(answers=(500, 503, 429, 200, 400), delay=0.05)
        url = await receiver.start()
        outbox = Outbox(tmp_path / "outbox.sqlite")
        sink = WebhookSink(url, backoff=0.01, max_backoff=0.05, outbox=outbox)
        sink.send(alert_event(9).verdict)  # not an alert: not sent
        for number in range(4):
            sink.send(alert_event(number))
        await sink.close(grace=20.0)
        await receiver.stop()
        return receiver, sink

    receiver, sink = asyncio.run(main())
    assert [status for _, status in receiver.posts] == [500, 503, 429, 200, 400, 200, 200]
    assert receiver.taken == ["alert-0", "alert-2", "alert-3"]
    assert (sink.delivered, sink.failed, sink.dropped) == (3, 1, 0)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert outbox.pending == 0


def test_alerts_pending_at_close_are_sent_by_the_next_sink_on_the_same_file(tmp_path):
    path = tmp_path / "outbox.sqlite"
    down = f"http://127.0.0.1:{free_port()}/hook"

    async def first_run():
        sink = WebhookSink(down, backoff=0.01, max_backoff=0.05, outbox=Outbox(path))
        for number in range(3):
            sink.send(alert_event(number))
        await sink.close(grace=0.5)
        return sink

    async def second_run():
        receiver = Receiver()
        url = await receiver.start()
        sink = WebhookSink(url, outbox=Outbox(path))  # nothing new is sent
        await sink.close(grace=20.0)
        await receiver.stop()
        return receiver

    assert asyncio.run(first_run()).delivered == 0
    with Outbox(path) as outbox:
        assert outbox.pending == 3
    assert asyncio.run(second_run()).taken == ["alert-0", "alert-1", "alert-2"]


def detector(weights: Path, url: str, outbox: Path, jsonl: Path, streams: int) -> list[str]:
    command = [sys.executable, "run_stream.py", "run", *[str(TALKING)] * streams]
    command += ["--weights", str(weights), "--backend", "torch"]
    command += ["--jsonl", str(jsonl), "--webhook", url, "--webhook-outbox", str(outbox)]
    return command


def alert_ids(jsonl: Path) -> list[str]:
    if not jsonl.exists():
        return []
    lines = jsonl.read_text().splitlines()
    return [event["id"] for line in lines if (event := json.loads(line))["type"] == "alert"]


@pytest.mark.slow
def test_every_alert_is_delivered_exactly_once_across_a_sigkill(alerting_weights, tmp_path):
    """Receiver down: the detector raises an alert per stream, is SIGKILLed with them all
    pending; receiver up, detector restarted on the same outbox: the old alerts go first,
    then the new ones, each once."""
    streams = 3
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    outbox = tmp_path / "outbox.sqlite"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    async def main() -> Receiver:
        process = await asyncio.create_subprocess_exec(
            *detector(alerting_weights, url, outbox, first, streams), cwd=ROOT, env=env
        )
        while len(alert_ids(first)) < streams and process.returncode is None:
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL  # killed, not ended on its own
        receiver = Receiver()
        await receiver.start(port)
        process = await asyncio.create_subprocess_exec(
            *detector(alerting_weights, url, outbox, second, streams), cwd=ROOT, env=env
        )
        assert await process.wait() == 0
        await receiver.stop()
        return receiver

    receiver = asyncio.run(main())
    before, after = alert_ids(first), alert_ids(second)
    assert len(before) == streams and len(after) == streams
    assert receiver.taken == before + after  # each once, the old ones first
    assert len(set(receiver.taken)) == len(receiver.taken) == 2 * streams
    with Outbox(outbox) as left:
        assert left.pending == 0
