"""Soak: N RTSP cameras for D minutes with a fault every minute; memory, alerts, reconnects.

Usage: ``python -m bench.soak [--streams 4] [--minutes 10] [--stride 5]``

Each stream is its own test RTSP server on 127.0.0.1 (``tests/rtsp_server.py``, system
Python with GStreamer) looping a clip built here at one size: talking.mp4, then 2 s of
no_face.mp4, so the face leaves every six seconds and comes back as a new track: a fresh
alert per loop, because the network here is the narrow test network with a constant logit
of 10 (every face is "fake"; speed, not accuracy, is what a soak measures). Alerts go
through the durable webhook outbox to a de-duplicating receiver in this process.

Faults, one every minute from 0:30, in turn: ``kill`` (SIGKILL one camera's server, start
it again on the same port 5 s later), ``stall`` (SIGSTOP one server for 15 s: connections
stay open but nothing comes; then SIGCONT, and the same server process takes the detector's
new connection), ``webhook`` (the receiver goes away
for 30 s). Faults and status events are logged on stdout as ``#`` lines.
RSS is sampled every 10 s (a ``# rss`` line each minute). At the end the outbox is drained
(up to 60 s) and one table is printed: RSS at start (after the first verdicts), after the
warm-up (3 minutes: one fault of each kind; native memory of MediaPipe, FFmpeg and the
allocator's per-thread arenas settles there), at the end and at most; the growth after the
warm-up; alerts produced / delivered / lost / duplicated, reconnects, frames and windows
dropped, verdicts, faults injected.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from aiohttp import web

from engines.backends import TorchBackend
from stream.alerts.outbox import Outbox
from stream.alerts.sinks import WebhookSink
from stream.events import Alert, BackendStatus, Event, StreamStatus, Verdict
from stream.pipeline import Pipeline
from stream.settings.pipeline import Settings
from stream.sources.rtsp import RtspSource
from tests.clip_builder import decode, looped, write_clip
from tests.live_support import narrow_model
from tests.rtsp_support import RtspServer

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT / "tests" / "data"
FAULTS = ("kill", "stall", "webhook")
FIRST_FAULT, FAULT_EVERY = 30.0, 60.0
KILL_FOR, STALL_FOR, WEBHOOK_DOWN_FOR = 5.0, 15.0, 30.0
#: seconds after the first verdicts by which one fault of each kind has come and gone.
WARM_UP = 180.0
#: seconds between RSS samples.
SAMPLE_EVERY = 10.0
SIZE = (400, 300)


def soak_clip(directory: Path) -> Path:
    """talking.mp4 then 50 frames of no_face.mp4, at one size (6 s)."""
    talking, empty = decode(DATA / "talking.mp4", SIZE), decode(DATA / "no_face.mp4", SIZE)
    return write_clip(directory / "soak.mp4", talking + looped(empty, 50), SIZE)


def rss_mb() -> float:
    """Resident memory of this process, MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def sample_rss(began: float, samples: list[tuple[float, float]]) -> None:
    """Append ``(seconds since began, RSS MB)`` every :data:`SAMPLE_EVERY` s, for ever."""
    while True:
        elapsed = time.monotonic() - began
        samples.append((elapsed, rss_mb()))
        if len(samples) % round(60 / SAMPLE_EVERY) == 1:
            print(f"# {elapsed:4.0f} s  rss {samples[-1][1]:.0f} MB", flush=True)
        await asyncio.sleep(SAMPLE_EVERY)


class Receiver:
    """A de-duplicating webhook receiver on 127.0.0.1 that can go down and come back."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.ids[(await request.json())["id"]] += 1
        return web.Response(status=204)


class AlertCounter:
    """A sink that counts the alerts and verdicts the pipeline produced, and logs status
    events as ``#`` lines."""

    def __init__(self) -> None:
        self.alerts: set[str] = set()
        self.verdicts = 0

    def send(self, event: Event) -> None:
        match event:
            case Alert():
                self.alerts.add(event.id)
            case Verdict():
                self.verdicts += 1
            case StreamStatus():
                print(f"#   {event.stream}: {event.status} {event.detail}", flush=True)
            case BackendStatus():
                print(f"#   backend {event.backend}: {event.status} {event.detail}", flush=True)

    async def close(self) -> None:
        pass


def constant_backend() -> TorchBackend:
    """The narrow network with a constant output logit of 10."""
    model = narrow_model()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.fill_(10.0)
    return TorchBackend(model)


async def inject(kind: str, number: int, servers: list[RtspServer], receiver: Receiver) -> str:
    """Inject one fault and undo it; return what was done."""
    server = servers[number % len(servers)]
    if kind == "kill":
        server.kill()
        await asyncio.sleep(KILL_FOR)
        await asyncio.to_thread(server.start)
        return f"kill camera {number % len(servers)} for {KILL_FOR:g} s"
    if kind == "stall":
        os.kill(server.pid, signal.SIGSTOP)
        await asyncio.sleep(STALL_FOR)
        os.kill(server.pid, signal.SIGCONT)
        return f"stall camera {number % len(servers)} for {STALL_FOR:g} s"
    await receiver.stop()
    await asyncio.sleep(WEBHOOK_DOWN_FOR)
    await receiver.start()
    return f"webhook receiver down for {WEBHOOK_DOWN_FOR:g} s"


async def soak(streams: int, minutes: float, stride: int, workdir: Path) -> dict[str, object]:
    clip = soak_clip(workdir)
    servers = [RtspServer(clip) for _ in range(streams)]
    for server in servers:
        await asyncio.to_thread(server.start)
    receiver = Receiver()
    url = await receiver.start()
    counter = AlertCounter()
    outbox = Outbox(workdir / "outbox.sqlite")
    webhook = WebhookSink(url, backoff=0.5, max_backoff=5.0, outbox=outbox)
    settings = Settings.of(stride=stride, jsonl=None)
    pipeline = Pipeline(settings, constant_backend(), sinks=[counter, webhook])

    sources = [RtspSource(server.url, f"cam{k}") for k, server in enumerate(servers)]
    for source in sources:
        pipeline.add_source(source)
    while counter.verdicts < streams:
        await asyncio.sleep(0.5)
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    sampler = asyncio.get_running_loop().create_task(sample_rss(began, samples))
    done: list[str] = []
    end = began + minutes * 60.0
    number = 0
    while (due := began + FIRST_FAULT + number * FAULT_EVERY) < end:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        kind = FAULTS[number % len(FAULTS)]
        print(f"# {time.monotonic() - began:4.0f} s  {kind} ...", flush=True)
        done.append(await inject(kind, number, servers, receiver))
        print(f"# {time.monotonic() - began:4.0f} s  {done[-1]}: done", flush=True)
        number += 1
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    sampler.cancel()
    samples.append((time.monotonic() - began, rss_mb()))
    warm = next((rss for elapsed, rss in samples if elapsed >= WARM_UP), samples[-1][1])
    for source in sources:
        await source.close()
    drain_until = time.monotonic() + 60.0
    while outbox.pending and time.monotonic() < drain_until:
        await asyncio.sleep(0.5)
    await pipeline.stop(drain=False)
    await receiver.stop()
    for server in servers:
        server.kill()
    metrics = pipeline.metrics
    delivered = set(receiver.ids)
    return {
        "streams": streams,
        "minutes": minutes,
        "RSS start MB": round(samples[0][1]),
        "RSS warm MB": round(warm),
        "RSS end MB": round(samples[-1][1]),
        "RSS max MB": round(max(rss for _, rss in samples)),
        "growth after warm-up MB": round(samples[-1][1] - warm),
        "alerts produced": len(counter.alerts),
        "alerts delivered": len(counter.alerts & delivered),
        "alerts lost": len(counter.alerts - delivered),
        "duplicate POSTs": sum(receiver.ids.values()) - len(delivered),
        "reconnects": sum(source.reconnects for source in sources),
        "frames dropped": round(
            sum(
                metrics.value("lipforensics_frames_dropped_total", stream=s.stream_id)
                for s in sources
            )
        ),
        "windows dropped": sum(pipeline.scheduler.dropped_windows.values()),
        "verdicts": counter.verdicts,
        "faults": len(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--stride", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as workdir:
        row = asyncio.run(soak(args.streams, args.minutes, args.stride, Path(workdir)))
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(str(value) for value in row.values()) + " |")


if __name__ == "__main__":
    main()
