"""`run`: score live or recorded sources without the HTTP server; end when they end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from commands.options import add_live_arguments
from commands.speed_options import add_hwaccel_argument

if TYPE_CHECKING:
    from stream.detector import Detector
    from stream.settings.pipeline import Settings
    from stream.sources.base import Source
    from stream.sources.rooms import Room

HELP = "score video files, RTSP cameras or call rooms live; print verdicts and alerts as JSON lines"
DESCRIPTION = """\
Each SOURCE (a video file, file://PATH, rtsp:// or rtsps://) becomes a stream, and each
participant of a Janus VideoRoom (janus://HOST[:PORT]/ROOM[?pin=...&secret=...], or
janus+https://; docs/calls.md) a stream ROOM/NAME, the room watched until stopped: every face
in it gets a verdict every --stride frames (25 fps) for the last 25 frames, and an alert
when it is fake for a sustained time. Events are JSON lines on stdout (or --jsonl PATH):
type (verdict, alert, status), stream, face, pts [start, end] in the source's seconds,
wall_time, logit, probability, level; alerts also carry a unique id.
Ends when every source has ended: exit 0, or 1 when a source failed on the way (a warning
says which). A camera is retried for ever unless --give-up-after.
SIGTERM, SIGHUP or Ctrl-C: stop reading, score what is in hand, flush, exit 0. A closed standard
output (| head -1) stops the run quietly (exit 141); an output that cannot be written
(a full disk) in one error line (exit 1). Webhook alerts still undelivered at the end are
named in a warning: the next run on the same outbox sends them.
A room scores at most --max-participants participants at once (default 16): one more
waits, with an error status that says so, until another leaves.
A TOML --config may hold any setting (README, Settings); flags win over the file. Its
[cameras] table (name = "rtsp://...") adds cameras, its [rooms] table (name =
"janus://...") rooms, named so in their stream ids; with --shard K/N this node runs only
the cameras (of the table and the SOURCEs) that rendezvous hashing gives to node K of N,
counting from 0, so N nodes with the same list split it between them (docs/mqtt.md).
--mqtt publishes alerts (through a durable outbox, like the webhook's), per-stream state,
verdicts, status and Home Assistant discovery to a broker (docs/mqtt.md)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``run`` command."""
    parser.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="video file, rtsp:// URL or janus:// room (or --config)",
    )
    add_live_arguments(parser)
    add_hwaccel_argument(parser)
    parser.add_argument(
        "--realtime",
        action="store_true",
        default=None,
        help="read files at their own pace, like cameras (default: as fast as possible)",
    )
    parser.add_argument(
        "--give-up-after",
        type=float,
        metavar="SECONDS",
        help="end a camera's stream (with an error) after this long without a connection "
        "(default: retry for ever)",
    )
    parser.add_argument(
        "--max-participants",
        type=int,
        help="call-room participants scored at once; more wait their turn (default 16)",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run only the cameras that node K of N (K from 0) gets by rendezvous hashing",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML file with pipeline settings and a [cameras] table"
    )


def run(args: argparse.Namespace) -> int:
    """Open the sources, load the network, run until every source ends; 1 if one failed."""
    import asyncio

    from commands.live import check_before_start, live_settings, load_detector
    from stream.sources.open import open_source

    settings = live_settings(args)
    check_before_start(settings)
    sources = [  # bad addresses and files fail before the weights load
        open_source(
            uri,
            name,
            realtime=settings.sources.realtime,
            give_up_after=settings.sources.give_up_after,
            hwaccel=settings.sources.hwaccel,
        )
        for name, uri in _cameras(args, settings.fleet.shard).items()
    ]
    detector = load_detector(settings)
    return asyncio.run(_run(settings, detector, sources))


def _cameras(args: argparse.Namespace, shard: str | None) -> dict[str, str]:
    """Stream id -> address of every camera to run: the SOURCEs, the config's [cameras]
    and [rooms] (janus:// only), and with a ``shard`` (K/N) only those of this node (said
    on stderr)."""
    import sys

    from errors import LipForensicsError
    from errors.text import printable
    from stream.settings.shard import parse_shard, read_cameras
    from stream.sources.rooms.janus_address import parse_janus_url

    cameras = dict(zip(_stream_ids(args.sources), args.sources, strict=True))
    tables = {"cameras": {}, "rooms": {}}
    if args.config:
        tables = {table: read_cameras(args.config, table) for table in tables}
    for uri in tables["rooms"].values():
        parse_janus_url(uri)
    for name, uri in (*tables["cameras"].items(), *tables["rooms"].items()):
        if name in cameras:
            raise LipForensicsError(f"{name!r} is named twice (SOURCE, [cameras], [rooms])")
        cameras[name] = uri
    if not cameras:
        raise LipForensicsError("no sources: give SOURCE arguments or a [cameras] or [rooms] table")
    if shard is None:
        return cameras
    mine = parse_shard(shard).pick(cameras)
    named = printable(", ".join(mine) or "none")
    print(f"shard {shard}: {len(mine)} of {len(cameras)} cameras ({named})", file=sys.stderr)
    return {name: cameras[name] for name in mine}


def _stream_ids(uris: list[str]) -> list[str]:
    """A unique, readable name per source: the file stem, host/path, or a call room's id,
    numbered if repeated."""
    from stream.sources.urls import JANUS_SCHEMES, split_url

    names: list[str] = []
    for uri in uris:
        parts = split_url(uri) if "://" in uri else None
        base = f"{parts.hostname}{parts.path}" if parts and parts.hostname else Path(uri).stem
        if parts and parts.scheme.lower() in JANUS_SCHEMES:
            base = parts.path.strip("/") or base
        name, copy = base, 1
        while name in names:
            copy += 1
            name = f"{base}-{copy}"
        names.append(name)
    return names


async def _run(settings: Settings, detector: Detector, sources: list[Source | Room]) -> int:
    """Run the pipeline; SIGTERM, SIGINT or SIGHUP stops the input and drains what is in
    hand."""
    import asyncio
    import signal

    from commands.live import start_pipeline
    from commands.outputs import exit_status, stop_on_output_failure, warn, warn_failures

    sinks, pipeline = start_pipeline(settings, detector)
    for source in sources:
        pipeline.add(source)
    loop = asyncio.get_running_loop()
    stop_on_output_failure(sinks, lambda drain: loop.create_task(pipeline.stop(drain=drain)))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: the terminal left
        loop.add_signal_handler(signum, lambda: loop.create_task(pipeline.stop(drain=True)))
    await pipeline.run_until_sources_end()
    warn_failures(pipeline.failures, pipeline.failed_streams)
    status = exit_status(sinks)
    if status is not None:
        return status
    for stream_id, worker in pipeline.workers.items():
        if worker.held_back:  # waited for capacity to the end: a limit, not a failure
            warn(f"{stream_id}: never scored: {worker.held_back} (--max-participants)")
        elif not worker.counts.windows_scored and not worker.failure:
            warn(
                f"{stream_id}: no verdict ({worker.counts.frames} frame(s) at 25 fps); "
                "a verdict needs 25 consecutive frames with a face"
            )
    return 1 if pipeline.failed_streams else 0
