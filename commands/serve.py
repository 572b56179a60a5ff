"""`serve`: run the live pipeline behind HTTP (WHIP ingest, /metrics, /healthz, /events,
/dashboard)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from commands.options import add_live_arguments

if TYPE_CHECKING:
    from stream.settings.pipeline import Settings
    from stream.settings.server import ServerSettings

HELP = "serve WHIP ingest plus /metrics, /healthz, /events (SSE) and the pages over HTTP"
DESCRIPTION = """\
Publishers send WebRTC video with WHIP (POST an SDP offer to /whip with the bearer token);
each video track is scored live and events go to --jsonl, the webhook, MQTT and /events.
/metrics is Prometheus text, /healthz says ok (200) or degraded (503), /state the live
state as JSON. Two pages for people ask for the token and send it with every request for
data (the pages hold none): /dashboard (every face with its level and probability chart,
the alerts with the mouth crops that raised them, stream states) and /publish (this
browser publishes its camera or a shared tab or window, e.g. a video call, and shows the
verdicts of its own stream; /publish#token=T&source=camera|screen starts at once). OBS
Studio publishes with Service WHIP, Server http://HOST:PORT/whip and the token.

The token comes from --token or the LIPFORENSICS_TOKEN environment variable (better: not
visible in the process list). A TOML --config may hold any setting (README, Settings),
the server's in a [server] table (host, port, token, max_sessions, max_tracks,
max_streams, max_body, connect_timeout, stall_timeout, ice_hosts, stun_servers,
cors_origins, protect_metrics, tls_cert, tls_key, heartbeat, idle_timeout,
max_connections); flags (and LIPFORENSICS_TOKEN) win over the file. Its [rooms] table
(name = "janus://HOST[:PORT]/ROOM[?pin=...]") names Janus VideoRooms to watch, one
stream per participant (docs/calls.md); POST /rooms, DELETE /rooms/NAME and GET /rooms
add, remove and list them while the node runs (behind the token). A room's participants
count in --max-streams with the WHIP tracks: one over it waits, with an error status that
says so, until a stream ends. /healthz without the
token says only ok or degraded, and /metrics only the node's totals; the reasons, streams
and per-stream series need the token. Plain HTTP on an address other than loopback gets
a warning: the token would cross the network in clear (use --tls-cert and --tls-key, or a
TLS proxy). SIGTERM, SIGHUP or Ctrl-C: stop taking input, score what is in hand, flush the
sinks, exit 0; SIGUSR1 and SIGUSR2 are ignored."""

TOKEN_VARIABLE = "LIPFORENSICS_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``serve`` command."""
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE) or None,
        help=f"bearer token (default: ${TOKEN_VARIABLE}, else the config's)",
    )
    add_live_arguments(parser)
    parser.add_argument(
        "--config", type=Path, help="TOML file of settings, the server's in a [server] table"
    )
    parser.add_argument("--max-sessions", type=int, help="WHIP publishers at once (default 4)")
    parser.add_argument(
        "--max-tracks", type=int, help="video tracks one WHIP publisher may send (default 2)"
    )
    parser.add_argument(
        "--max-streams",
        type=int,
        help="streams the node watches at once, every kind together (default 16)",
    )
    parser.add_argument("--max-body", type=int, help="largest WHIP offer, bytes (default 65536)")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a WHIP session has to connect (default 20)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a connected WHIP publisher may send no new picture before its "
        "stream is stalled (default 5)",
    )
    parser.add_argument(
        "--max-connections", type=int, help="connections open at once; more get 503 (default 256)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds a connection may take to send a request, or sit idle (default 15)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        metavar="SECONDS",
        help="seconds between the keep-alive comments of /events (default 15)",
    )
    parser.add_argument(
        "--ice-host",
        action="append",
        dest="ice_hosts",
        metavar="ADDRESS",
        help="local address offered for ICE (repeat; default: every interface but loopback)",
    )
    parser.add_argument(
        "--stun",
        action="append",
        dest="stun_servers",
        metavar="URL",
        help="STUN server, stun:HOST:PORT (repeat; default: none)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        metavar="ORIGIN",
        help="browser origin allowed to call the API (repeat; default: none)",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS: certificate chain (PEM)")
    parser.add_argument("--tls-key", type=Path, help="serve HTTPS: private key (PEM)")
    parser.add_argument(
        "--protect-metrics",
        action=argparse.BooleanOptionalAction,
        help="require the token for /metrics too (default: no)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the pipeline and the server, run until SIGTERM, SIGINT or SIGHUP, drain,
    exit 0."""
    import asyncio
    import sys

    from commands.live import check_before_start, live_settings

    settings = live_settings(args, serve=True)
    check_before_start(settings)
    rooms = _rooms(args.config)
    if settings.engine.weights is not None:  # a bad input is one line, before any warning
        from engines.checkpoint import require_file

        require_file(Path(settings.engine.weights))
    assert settings.server is not None  # serve=True builds it
    for warning in _warnings(settings.server):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return asyncio.run(_serve(settings, settings.server, rooms))


def _rooms(config: Path | None) -> dict[str, str]:
    """The ``[rooms]`` table of ``config`` (name -> address), each room checked.

    Raises:
        LipForensicsError: a bad table, name or address, in one line.
    """
    from stream.server.rooms import check_room
    from stream.settings.shard import read_cameras

    rooms = read_cameras(config, "rooms") if config is not None else {}
    for name, address in rooms.items():
        check_room(name, address)
    return rooms


def _warnings(server: ServerSettings) -> list[str]:
    """What an operator should know before the server starts: a weak token, a token that
    would cross the network in clear."""
    found = []
    if server.weak_token:
        found.append(
            f"the token has {len(server.token)} character(s), easy to guess; "
            "use a long random one, e.g. from secrets.token_urlsafe()"
        )
    if server.token_in_clear:
        found.append(
            f"serving plain HTTP on {server.host}: the bearer token travels in clear to "
            "anyone on the network; use --tls-cert and --tls-key (or a TLS proxy in front)"
        )
    return found


async def _serve(settings: Settings, server_settings: ServerSettings, rooms: dict[str, str]) -> int:
    """Run the server and the pipeline (watching ``rooms``: name -> address) until a stop
    signal; then drain."""
    import asyncio
    import signal
    import sys

    from commands.live import load_detector, start_pipeline
    from commands.outputs import exit_status, stop_on_output_failure
    from stream.server.app import Server

    detector = await asyncio.to_thread(load_detector, settings)
    sinks, pipeline = start_pipeline(settings, detector)
    server = Server(pipeline, server_settings)
    stop = asyncio.Event()
    stop_on_output_failure(sinks, lambda drain: stop.set())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: the terminal left
        loop.add_signal_handler(signum, stop.set)
    for signum in (signal.SIGUSR1, signal.SIGUSR2):  # their default would kill the node
        signal.signal(signum, signal.SIG_IGN)
    try:
        await server.start()
        print(
            f"serving on {server.url} (WHIP at /whip, dashboard at {server.url}/dashboard, "
            f"publish from a browser at {server.url}/publish)",
            file=sys.stderr,
            flush=True,
        )
        for name, address in rooms.items():
            room = server.rooms.add(name, address)
            print(f"watching room {name} at {room.shown}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await server.stop()
        await pipeline.stop(drain=True)
    status = exit_status(sinks)
    print("stopped", file=sys.stderr, flush=True)
    return status or 0
