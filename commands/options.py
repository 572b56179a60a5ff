"""Argument types shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from commands.speed_options import add_precision_arguments, precision_overrides

if TYPE_CHECKING:
    from stream.settings.pipeline import Settings


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


def model_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings :func:`add_model_arguments` adds, for ``load_settings``."""
    return {
        "weights": args.weights,
        "backend": args.backend,
        **triton_overrides(args),
        **precision_overrides(args),
    }


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mqtt``, ``--mqtt-outbox`` and ``--node`` (``run`` and ``serve``)."""
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
        "(default: JSONL.mqtt-outbox.sqlite next to --jsonl, else ~/.local/state/lipforensics)",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="this node's name, on every event, in /metrics and in the MQTT topics "
        "(default: the host name)",
    )


def fleet_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings :func:`add_fleet_arguments` adds, for ``load_settings``."""
    return {"mqtt": args.mqtt, "mqtt_outbox": args.mqtt_outbox, "node": args.node}


def check_mqtt(settings: Settings) -> None:
    """Connect once to the settings' MQTT broker, if any, before the slow start: refused
    credentials raise LipForensicsError (exit 2); an unreachable broker is retried later."""
    if settings.mqtt is not None:
        from stream.alerts.mqtt import check_broker

        check_broker(settings.mqtt)


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


def triton_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings :func:`add_triton_arguments` adds, for ``load_settings``."""
    return {
        "triton_url": args.triton_url,
        "triton_ca": args.triton_ca,
        "triton_cert": args.triton_cert,
        "triton_key": args.triton_key,
        "triton_headers": tuple(args.triton_headers) if args.triton_headers else None,
        "triton_timeout": args.triton_timeout,
        "thresholds": args.thresholds,
    }
