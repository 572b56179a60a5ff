"""Soak: N streams for D minutes with a fault every minute; memory, alerts, reconnects.

Usage: ``python -m bench.soak [--streams 4] [--minutes 10] [--stride 5] [--no-triton]``

N - 1 streams are RTSP cameras, each its own test RTSP server on 127.0.0.1
(``tests/rtsp_server.py``, system Python with GStreamer), and one is a WHIP publisher (an
aiortc peer in this process, publishing to the real server of ``serve`` on 127.0.0.1). All
loop one clip built here at one size: talking.mp4, then 2 s of no_face.mp4, so the face
leaves every six seconds and comes back as a new track: a fresh alert per loop, because the
network here is the narrow test network with a constant logit of 10 (every face is "fake";
speed, not accuracy, is what a soak measures). It runs on a real Triton server
(``tests/triton_support.py``: ``.venv-triton``, built by ``make triton-server``), or in
this process with ``--no-triton``. Alerts go through the durable webhook outbox to a
de-duplicating receiver in this process.

Faults, one every minute from 0:30, in turn: ``kill`` (SIGKILL one camera's server, start
it again on the same port 5 s later), ``stall`` (SIGSTOP one server for 15 s: connections
stay open but nothing comes; then SIGCONT, and the same server process takes the detector's
new connection), ``webhook`` (the receiver goes away for 30 s), ``whip-stall`` (the WHIP
publisher sends no picture for 15 s, ICE kept alive: ``stalled`` after the server's 5 s
``stall_timeout``, ``connected`` when the picture moves again), ``triton`` (SIGKILL the
Triton server, start it again on the same ports 10 s later: the node's backend
``degraded``, then ``ok``; not with ``--no-triton``). Faults and status events are logged on
stdout as ``#`` lines. RSS is sampled every 10 s (a ``# rss`` line each minute). At the end
the outbox is drained (up to 60 s) and one table is printed: RSS at start (after the first
verdicts), at minute 2 (warm: MediaPipe, FFmpeg, aiortc and the allocator's per-thread
arenas have settled), at the end and at most; the growth from minute 2 to the end (MB and
%); alerts produced / delivered / lost / duplicated, reconnects, WHIP stalls, backend
outages, frames and windows dropped, verdicts, faults injected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import torch
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection

from commands.cli import main as cli
from engines.backends import Backend, TorchBackend
from engines.checkpoint import save_checkpoint
from engines.model import LipForensics
from engines.triton import TritonTarget
from stream.alerts.outbox import Outbox
from stream.alerts.sinks import WebhookSink
from stream.detector import Detector
from stream.events import (
    Alert,
    Availability,
    BackendStatus,
    Connection,
    Event,
    StreamStatus,
    Verdict,
)
from stream.health.memory import limit_malloc_arenas
from stream.pipeline import Pipeline
from stream.server.app import Server
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings, WhipSettings
from stream.sources.rtsp import RtspSource
from tests.clip_builder import decode, looped, write_clip
from tests.live_support import narrow_model
from tests.rtsp_support import RtspServer
from tests.server_support import SDP_HEADERS, TOKEN, Publisher, accept_answer
from tests.triton_support import VENV, TritonServer, python_repository

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT / "tests" / "data"
FAULTS = ("kill", "stall", "webhook", "whip-stall", "triton")
FIRST_FAULT, FAULT_EVERY = 30.0, 60.0
KILL_FOR, STALL_FOR, WEBHOOK_DOWN_FOR, TRITON_DOWN_FOR = 5.0, 15.0, 30.0, 10.0
#: seconds after the first verdicts from which RSS growth is measured (minute 2).
WARM_UP = 120.0
#: seconds between RSS samples.
SAMPLE_EVERY = 10.0
SIZE = (400, 300)


def soak_pictures() -> list[np.ndarray]:
    """talking.mp4 then 50 frames of no_face.mp4, RGB at one size (6 s)."""
    talking, empty = decode(DATA / "talking.mp4", SIZE), decode(DATA / "no_face.mp4", SIZE)
    return talking + looped(empty, 50)


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
    """A sink that counts the alerts, verdicts, statuses and backend outages the pipeline
    produced, and logs status events as ``#`` lines."""

    def __init__(self) -> None:
        self.alerts: set[str] = set()
        self.verdicts = 0
        self.statuses: Counter[Connection] = Counter()
        self.outages = 0

    def send(self, event: Event) -> None:
        match event:
            case Alert():
                self.alerts.add(event.id)
            case Verdict():
                self.verdicts += 1
            case StreamStatus():
                self.statuses[event.status] += 1
                print(f"#   {event.stream}: {event.status} {event.detail}", flush=True)
            case BackendStatus():
                self.outages += event.status is Availability.DEGRADED
                print(f"#   backend {event.backend}: {event.status} {event.detail}", flush=True)

    async def close(self) -> None:
        pass


def constant_model() -> LipForensics:
    """The narrow network with a constant output logit of 10."""
    model = narrow_model()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.fill_(10.0)
    return model


def start_triton(workdir: Path) -> TritonServer:
    """A Triton server (python backend) serving ``export-triton``'s repository of
    :func:`constant_model`."""
    if not (VENV / ".installed").exists():
        raise SystemExit(f"error: no Triton server in {VENV} (make triton-server, or --no-triton)")
    weights = save_checkpoint(workdir / "constant.pth", constant_model())
    exported = workdir / "repository"
    with contextlib.redirect_stdout(io.StringIO()):  # the repository's listing
        exit_code = cli(["export-triton", "--weights", str(weights), "--out", str(exported)])
    if exit_code != 0:
        raise SystemExit("error: export-triton failed")
    server = TritonServer(python_repository(exported, workdir / "served"), workdir / "triton.log")
    server.start()
    return server


async def start_whip(pipeline: Pipeline, pictures: list[np.ndarray]) -> Whip:
    """The server of ``serve`` on 127.0.0.1 around ``pipeline``, and a publisher of
    ``pictures`` connected to it."""
    server = Server(
        pipeline,
        ServerSettings(token=TOKEN, port=0, whip=WhipSettings(ice_hosts=("127.0.0.1",))),
    )
    await server.start()
    track = Publisher(pictures)
    peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    peer.addTransceiver(track, direction="sendonly")
    await peer.setLocalDescription(await peer.createOffer())
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.url + "/whip", data=peer.localDescription.sdp, headers=SDP_HEADERS
        ) as reply,
    ):
        if reply.status != 201:
            raise SystemExit(f"error: WHIP offer refused: {reply.status} {await reply.text()}")
        await accept_answer(peer, await reply.text())
    return Whip(server, peer, track)


@dataclass
class Whip:
    """The WHIP side of the soak: the server, the publisher's peer and its track."""

    server: Server
    peer: RTCPeerConnection
    track: Publisher

    async def close(self) -> None:
        await self.peer.close()
        await self.server.stop()


@dataclass
class Rig:
    """What the faults act on."""

    cameras: list[RtspServer]
    receiver: Receiver
    whip: Whip
    triton: TritonServer | None

    async def inject(self, kind: str, number: int) -> str:
        """Inject one fault and undo it; return what was done."""
        camera = number % len(self.cameras)
        server = self.cameras[camera]
        if kind == "kill":
            server.kill()
            await asyncio.sleep(KILL_FOR)
            await asyncio.to_thread(server.start)
            return f"kill camera {camera} for {KILL_FOR:g} s"
        if kind == "stall":
            os.kill(server.pid, signal.SIGSTOP)
            await asyncio.sleep(STALL_FOR)
            os.kill(server.pid, signal.SIGCONT)
            return f"stall camera {camera} for {STALL_FOR:g} s"
        if kind == "whip-stall":
            self.whip.track.hold()
            await asyncio.sleep(STALL_FOR)
            self.whip.track.resume.set()
            return f"WHIP publisher without a picture for {STALL_FOR:g} s"
        if kind == "triton":
            self.triton.kill()
            await asyncio.sleep(TRITON_DOWN_FOR)
            await asyncio.to_thread(self.triton.start)
            return f"Triton server killed, started again {TRITON_DOWN_FOR:g} s later"
        await self.receiver.stop()
        await asyncio.sleep(WEBHOOK_DOWN_FOR)
        await self.receiver.start()
        return f"webhook receiver down for {WEBHOOK_DOWN_FOR:g} s"


def local_backend() -> Backend:
    """:func:`constant_model` in this process."""
    return TorchBackend(constant_model())


async def soak(
    streams: int, minutes: float, stride: int, workdir: Path, triton: bool
) -> dict[str, object]:
    pictures = soak_pictures()
    clip = write_clip(workdir / "soak.mp4", pictures, SIZE)
    cameras = [RtspServer(clip) for _ in range(streams - 1)]
    for server in cameras:
        await asyncio.to_thread(server.start)
    triton_server = start_triton(workdir) if triton else None  # the CLI wants the main thread
    detector = None
    if triton_server is not None:
        target = TritonTarget.parse(triton_server.url, timeout=5)
        detector = Detector.load(backend="triton", triton=target)
    receiver = Receiver()
    url = await receiver.start()
    counter = AlertCounter()
    outbox = Outbox(workdir / "outbox.sqlite")
    webhook = WebhookSink(url, backoff=0.5, max_backoff=5.0, outbox=outbox)
    settings = Settings.of(stride=stride, jsonl=None)
    backend = detector.backend if detector is not None else local_backend()
    pipeline = Pipeline(settings, backend, sinks=[counter, webhook])

    sources = [RtspSource(server.url, f"cam{k}") for k, server in enumerate(cameras)]
    for source in sources:
        pipeline.add_source(source)
    whip = await start_whip(pipeline, pictures)
    rig = Rig(cameras, receiver, whip, triton_server)
    kinds = [kind for kind in FAULTS if triton or kind != "triton"]
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
        kind = kinds[number % len(kinds)]
        print(f"# {time.monotonic() - began:4.0f} s  {kind} ...", flush=True)
        done.append(await rig.inject(kind, number))
        print(f"# {time.monotonic() - began:4.0f} s  {done[-1]}: done", flush=True)
        number += 1
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    sampler.cancel()
    samples.append((time.monotonic() - began, rss_mb()))
    warm = next((rss for elapsed, rss in samples if elapsed >= WARM_UP), samples[-1][1])
    for source in sources:
        await source.close()
    await whip.close()
    drain_until = time.monotonic() + 60.0
    while outbox.pending and time.monotonic() < drain_until:
        await asyncio.sleep(0.5)
    await pipeline.stop(drain=False)
    await receiver.stop()
    for server in cameras:
        server.kill()
    if triton_server is not None:
        detector.close()
        triton_server.kill()
    metrics = pipeline.metrics
    delivered = set(receiver.ids)
    return {
        "streams": f"{len(cameras)} RTSP + 1 WHIP",
        "backend": "triton" if triton else "torch",
        "minutes": minutes,
        "RSS start MB": round(samples[0][1]),
        "RSS min 2 MB": round(warm),
        "RSS end MB": round(samples[-1][1]),
        "RSS max MB": round(max(rss for _, rss in samples)),
        "growth min 2 to end MB": round(samples[-1][1] - warm),
        "growth %": round(100 * (samples[-1][1] - warm) / warm, 1),
        "alerts produced": len(counter.alerts),
        "alerts delivered": len(counter.alerts & delivered),
        "alerts lost": len(counter.alerts - delivered),
        "duplicate POSTs": sum(receiver.ids.values()) - len(delivered),
        "reconnects": sum(source.reconnects for source in sources),
        "WHIP stalls": counter.statuses[Connection.STALLED],
        "backend outages": counter.outages,
        "frames dropped": round(
            sum(
                metrics.value("lipforensics_frames_dropped_total", stream=stream)
                for stream in pipeline.workers
            )
        ),
        "windows dropped": sum(pipeline.scheduler.dropped_windows.values()),
        "verdicts": counter.verdicts,
        "faults": len(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4, help="RTSP cameras + 1 WHIP (>= 2)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument(
        "--no-triton", action="store_true", help="score in this process, no Triton fault"
    )
    args = parser.parse_args()
    limit_malloc_arenas()  # as the commands do
    if args.streams < 2:
        parser.error("--streams must be at least 2 (one WHIP publisher and a camera)")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as workdir:
        row = asyncio.run(
            soak(args.streams, args.minutes, args.stride, Path(workdir), not args.no_triton)
        )
    print("| " + " | ".join(row) + " |")
    print("|" + "---|" * len(row))
    print("| " + " | ".join(str(value) for value in row.values()) + " |")


if __name__ == "__main__":
    main()
