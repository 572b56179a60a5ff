"""`serve`: run the live pipeline behind HTTP (WHIP ingest, /metrics, /healthz, /events,
/dashboard)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from commands.options import (
    add_fleet_arguments,
    add_model_arguments,
    check_mqtt,
    fleet_overrides,
    model_overrides,
    positive_int,
)
from commands.speed_options import (
    print_precision,
    with_int8_default,
)

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
visible in the process list). A TOML --config may hold a [pipeline] table (stride,
backend, weights, host, port, token, ...) and a [server] table (max_sessions, max_body,
connect_timeout, ice_hosts, stun_servers, cors_origins, protect_metrics, tls_cert,
tls_key, idle_timeout, max_connections); flags win over the file. /healthz without the
token says only ok or degraded; the reasons and streams need the token. SIGTERM or
Ctrl-C: stop taking input, score what is in hand, flush the sinks, exit 0."""

TOKEN_VARIABLE = "LIPFORENSICS_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``serve`` command."""
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--token", help=f"bearer token (default: ${TOKEN_VARIABLE})")
    add_model_arguments(parser)
    parser.add_argument(
        "--stride", type=positive_int, help="frames between windows (1..25, default 5)"
    )
    parser.add_argument("--jsonl", help="JSON-lines events to this file, '-' = stdout (default)")
    parser.add_argument("--webhook", help="POST alert events to this URL")
    parser.add_argument(
        "--webhook-outbox",
        metavar="PATH",
        help="SQLite file keeping webhook events until delivered, across restarts "
        "(default: JSONL.outbox.sqlite next to --jsonl, else ~/.local/state/lipforensics)",
    )
    add_fleet_arguments(parser)
    parser.add_argument("--config", type=Path, help="TOML file with [pipeline] and [server]")
    parser.add_argument("--max-sessions", type=int, help="WHIP publishers at once (default 4)")
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
        action="store_true",
        default=None,
        help="require the token for /metrics too",
    )


def run(args: argparse.Namespace) -> int:
    """Build the pipeline and the server, run until SIGTERM or SIGINT, drain, exit 0."""
    import asyncio

    from stream.detector import require_weights
    from stream.settings.pipeline import load_settings
    from stream.settings.server import load_server_settings

    settings = load_settings(
        args.config,
        stride=args.stride,
        jsonl=args.jsonl,
        webhook=args.webhook,
        webhook_outbox=args.webhook_outbox,
        **fleet_overrides(args),
        **model_overrides(args),
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get(TOKEN_VARIABLE) or None,
    )
    server_settings = load_server_settings(
        args.config,
        token=settings.token or "",
        host=settings.host,
        port=settings.port,
        max_sessions=args.max_sessions,
        ice_hosts=tuple(args.ice_hosts) if args.ice_hosts else None,
        stun_servers=tuple(args.stun_servers) if args.stun_servers else None,
        cors_origins=tuple(args.cors_origins) if args.cors_origins else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        protect_metrics=args.protect_metrics,
    )
    server_settings.ssl_context()  # bad certificate files fail before the weights load
    require_weights(settings.weights, settings.backend)
    check_mqtt(settings)
    return asyncio.run(_serve(settings, server_settings))


async def _serve(settings: Settings, server_settings: ServerSettings) -> int:
    """Run the server and the pipeline until a stop signal; then drain."""
    import asyncio
    import signal
    import sys

    from commands.outputs import exit_status, stop_on_output_failure
    from stream.detector import Detector
    from stream.pipeline import sinks_for
    from stream.server.app import Server

    detector = await asyncio.to_thread(Detector.from_settings, with_int8_default(settings))
    print_precision(detector)
    sinks = sinks_for(settings)
    pipeline = detector.pipeline(settings, sinks)
    print(detector.thresholds_note, file=sys.stderr, flush=True)
    if server_settings.weak_token:
        print(
            f"warning: the token has {len(server_settings.token)} character(s), easy to guess; "
            "use a long random one, e.g. from secrets.token_urlsafe()",
            file=sys.stderr,
            flush=True,
        )
    server = Server(pipeline, server_settings)
    stop = asyncio.Event()
    stop_on_output_failure(sinks, lambda drain: stop.set())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        print(
            f"serving on {server.url} (WHIP at /whip, dashboard at {server.url}/dashboard, "
            f"publish from a browser at {server.url}/publish)",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
        await pipeline.stop(drain=True)
    status = exit_status(sinks)
    print("stopped", file=sys.stderr, flush=True)
    return status or 0
