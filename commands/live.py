"""What ``run`` and ``serve`` share: their settings from ``--config`` and the flags, the
checks that fail before the slow start, the detector, and the pipeline with its sinks."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from commands.options import setting_flags
from commands.speed_options import print_precision, with_int8_default

if TYPE_CHECKING:
    from calibration.thresholds import Thresholds
    from stream.alerts.sinks import Sink
    from stream.detector import Detector
    from stream.pipeline import Pipeline
    from stream.settings.groups import AlertSettings
    from stream.settings.pipeline import Settings


def live_settings(args: argparse.Namespace, *, serve: bool = False) -> Settings:
    """The settings of ``--config`` (if given), with the flags given winning over it; the
    server's group only for ``serve``.

    Raises:
        LipForensicsError: a bad file, setting or flag, in one line.
    """
    from stream.settings.pipeline import load_settings

    return load_settings(args.config, serve=serve, **setting_flags(args))


def check_before_start(settings: Settings) -> None:
    """Refuse in one line, before the weights load, what would fail later: unusable TLS
    files, no weights, an MQTT broker that refuses the credentials (an unreachable one is
    retried later)."""
    from stream.detector import require_weights

    if settings.server is not None:
        settings.server.ssl_context()
    require_weights(settings.engine.weights, settings.engine.backend)
    check_mqtt(settings.alerts)


def check_mqtt(alerts: AlertSettings) -> None:
    """Connect once to the MQTT broker of ``alerts``, if any: refused credentials raise
    LipForensicsError (exit 2)."""
    if alerts.mqtt is not None:
        from stream.alerts.mqtt import check_broker

        check_broker(alerts.mqtt)


def load_detector(settings: Settings) -> Detector:
    """The detector of the settings' engine group (INT8 calibrated on the bundled clip
    unless told otherwise), its INT8 check printed on stderr."""
    from stream.detector import Detector

    detector = Detector.from_settings(with_int8_default(settings.engine))
    print_precision(detector)
    return detector


def start_pipeline(settings: Settings, detector: Detector) -> tuple[list[Sink], Pipeline]:
    """The sinks the settings ask for and the live pipeline in front of them (inside a
    running event loop); which thresholds are in use is said on stderr."""
    from stream.pipeline import sinks_for

    sinks = sinks_for(settings.alerts, settings.fleet.node)
    pipeline = detector.pipeline(settings, sinks)
    print(detector.thresholds_note, file=sys.stderr, flush=True)
    mismatch = landmarks_mismatch(detector.thresholds, settings.faces.landmarks)
    if mismatch:
        print(f"warning: {mismatch}", file=sys.stderr, flush=True)
    return sinks, pipeline


def landmarks_mismatch(thresholds: Thresholds | None, landmarks: str) -> str | None:
    """What to warn of when the live landmark network is not the one the thresholds were
    calibrated with (their crops sit 1-2 pixels apart, docs/crops.md); None if it is."""
    if thresholds is None or thresholds.landmarks == landmarks:
        return None
    return (
        f"the thresholds were calibrated on crops of the {thresholds.landmarks} landmark "
        f"network and these streams use the {landmarks} one; check them on this footage "
        f"or calibrate again with 'calibrate --landmarks {landmarks}'"
    )
