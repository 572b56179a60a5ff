"""Arguments shared by several commands, and the settings they give."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.speed_options import add_precision_arguments


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--stride``, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--backend`` and the Triton and precision options (``run``, ``serve``)."""
    parser.add_argument("--weights", type=Path, help="checkpoint (.pth) of the network")
    parser.add_argument(
        "--backend",
        help="auto (default), torch, torch-cuda, onnxruntime, tensorrt, or triton (a Triton "
        "server at --triton-url: docs/fleet.md)",
    )
    add_triton_arguments(parser)
    add_precision_arguments(parser)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``serve`` share: the model's, ``--stride``, where events go
    (JSON lines, webhook, MQTT) and ``--node``."""
    add_model_arguments(parser)
    parser.add_argument(
        "--stride", type=positive_int, help="frames between windows (1..25, default 5)"
    )
    parser.add_argument(
        "--landmarks",
        choices=("full", "lite"),
        help="landmark network: full (default; MediaPipe Face Landmarker's, the scan's crops) "
        "or lite (MediaPipe's earlier face mesh: under half the CPU per face, crops "
        "1-2 pixels elsewhere; for crowded call galleries, docs/crops.md)",
    )
    parser.add_argument("--jsonl", help="JSON-lines events to this file, '-' = stdout (default)")
    parser.add_argument("--webhook", help="POST alert events to this URL")
    parser.add_argument(
        "--webhook-outbox",
        metavar="PATH",
        help="SQLite file keeping webhook events until delivered, across restarts "
        "(default: JSONL.outbox.sqlite next to a plain --jsonl file, "
        "else the state folder ~/.local/state/lipforensics)",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish events to this MQTT broker: mqtt://[USER:PASS@]HOST[:PORT][/PREFIX] or "
        "mqtts://... (a password is better kept in the --config file than on the command line)",
    )
    parser.add_argument(
        "--mqtt-outbox",
        metavar="PATH",
        help="SQLite file keeping MQTT alerts until the broker has them, across restarts "
        "(default: JSONL.mqtt-outbox.sqlite next to a plain --jsonl file, "
        "else the state folder ~/.local/state/lipforensics)",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="this node's name, on every event, in /metrics and in the MQTT topics "
        "(default: the host name)",
    )


def add_triton_arguments(parser: argparse.ArgumentParser) -> None:
    """``--triton-url`` and its TLS, header and timeout options, and ``--thresholds``
    (``scan``, ``run`` and ``serve``)."""
    parser.add_argument(
        "--triton-url",
        metavar="HOST:PORT",
        help="with --backend triton: the Triton server's gRPC address (grpcs://HOST:PORT for "
        "TLS); --weights is then optional (given, the served models must come from them)",
    )
    parser.add_argument("--triton-ca", type=Path, metavar="PEM", help="TLS roots to trust")
    parser.add_argument("--triton-cert", type=Path, metavar="PEM", help="TLS client certificate")
    parser.add_argument("--triton-key", type=Path, metavar="PEM", help="its private key")
    parser.add_argument(
        "--triton-header",
        action="append",
        dest="triton_headers",
        metavar="'NAME: VALUE'",
        help="extra header on every Triton request, e.g. a proxy's authorisation (repeat)",
    )
    parser.add_argument(
        "--triton-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one Triton call may take before it counts as a failure (default 10)",
    )
    parser.add_argument(
        "--thresholds",
        type=Path,
        metavar="PATH",
        help="thresholds file from `calibrate` (default: the one next to --weights); with "
        "--backend triton and no --weights, it must be calibrated for the served models",
    )


def setting_flags(args: argparse.Namespace, *groups: str) -> dict[str, object]:
    """The settings given as flags: every argument whose destination is a setting's name
    (of ``groups``; default: any group), lists as tuples, unset ones (None) left out."""
    from stream.settings.layout import HOME

    values: dict[str, object] = {}
    for name, group in HOME.items():
        value = getattr(args, name, None)
        if value is not None and (not groups or group in groups):
            values[name] = tuple(value) if isinstance(value, list) else value
    return values
