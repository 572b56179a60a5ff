"""Pipeline settings: one dataclass, filled from a TOML file and then from command-line flags.

A TOML file (read by :mod:`stream.settings.toml_file`) holds the same names as :class:`Settings`
fields, at the top level or under a ``[pipeline]`` table (``[server]`` belongs to ``serve``),
e.g.::

    stride = 5
    backend = "onnxruntime"
    webhook = "https://alerts.example/hook"

Flags given on the command line win over the file; the file wins over the defaults.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.precision import PRECISIONS
from engines.triton import TritonTarget
from errors import LipForensicsError
from stream.alerts.mqtt_address import parse_mqtt_url
from stream.settings.toml_file import checked, read_tables
from stream.sources.hwaccel import check_hwaccel
from stream.sources.urls import redact, split_url


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that shapes a pipeline; the defaults suit a 2-core machine.

    Attributes:
        weights: checkpoint path (None only for tests that pass a backend directly).
        backend: engine backend name ("auto", "torch", "torch-cuda", "onnxruntime",
            "tensorrt", "triton").
        triton_url: the Triton server of ``backend = "triton"``: ``HOST:PORT`` of its gRPC
            endpoint, or ``grpcs://HOST:PORT`` for TLS (see docs/fleet.md).
        triton_ca, triton_cert, triton_key: PEM files for TLS: roots to trust (default: the
            system's), a client certificate and its key (mutual TLS).
        triton_headers: extra request headers, ``"Name: value"`` (a proxy's credentials).
        triton_timeout: seconds one Triton call may take before it counts as a failure.
        thresholds: a thresholds file (``calibrate``) to use instead of the one next to the
            weights; with ``triton`` and no weights, the only source of calibrated levels
            (it must name the served checkpoint's SHA-256).
        stride: frames between consecutive windows of a face (25 = non-overlapping).
        window: frames per window (the network's 25).
        realtime: pace file sources like cameras.
        give_up_after: seconds a camera may stay unreachable before its stream ends with an
            error (None: retry for ever).
        jsonl: where JSON-line events go ("-" = standard output, None = nowhere).
        webhook: URL that receives alert events by POST (None = no webhook).
        webhook_outbox: SQLite file holding webhook events until delivered (None: next to
            the ``jsonl`` file, else in ~/.local/state/lipforensics; see stream/alerts/outbox.py).
        mqtt: MQTT broker for events, ``mqtt://[USER:PASS@]HOST[:PORT][/PREFIX]`` or
            ``mqtts://`` (None = no MQTT; see docs/mqtt.md).
        mqtt_outbox: SQLite file holding MQTT alerts until the broker has them (None: as
            ``webhook_outbox``, named ``mqtt-outbox``).
        node: this node's name, on every event, in /metrics and in the MQTT topics (default:
            the host name).
        max_faces: faces tracked per stream.
        hold_frames: a face missing for at most this many frames keeps its window (the
            last crop stands in); longer ends the window.
        forget_frames: a face missing for longer than this gets a new id when it returns.
        frame_queue: 25 fps frames buffered per live stream before the oldest are dropped.
        frame_queue_mb: the same buffer's limit in MB of decoded RGB frames (a 1080p frame is
            6 MB: 128 MB hold 21 of them), for files too (they wait instead of dropping).
        window_queue: windows waiting for inference (all streams) before the oldest drop.
        max_delay: seconds a live window may wait for inference before a newer one of any
            stream takes its turn (it is dropped and counted).
        prefetch_queue: per-frame encodings waiting before the oldest are dropped.
        max_batch: frames per encoder call.
        landmark_threads: threads running landmarkers (one landmarker per stream; None:
            one per core, see :attr:`landmark_workers`).
        inference_threads: threads of the engine (None: half the cores, see
            :attr:`engine_threads`).
        precision: ``"fp32"``, or ``"int8"``: ONNX Runtime's INT8 network, calibrated on
            ``int8_calibration`` (genuine crops ``.npy`` or a genuine video; the commands
            default to the bundled genuine clip) and refused when too far from FP32
            (:mod:`engines.precision`, docs/benchmarks.md).
        hwaccel: PyAV hardware decoding for files and RTSP cameras (``"cuda"``,
            ``"vaapi"``, ...; None: software), see :mod:`stream.sources.hwaccel`.
        host, port, token: the HTTP server's address and bearer token (``serve``).
    """

    weights: Path | None = None
    backend: str = "auto"
    triton_url: str | None = None
    triton_ca: Path | None = None
    triton_cert: Path | None = None
    triton_key: Path | None = None
    triton_headers: tuple[str, ...] = ()
    triton_timeout: float = 10.0
    thresholds: Path | None = None
    stride: int = 5
    window: int = 25
    realtime: bool = False
    give_up_after: float | None = None
    jsonl: str | None = "-"
    webhook: str | None = None
    webhook_outbox: str | None = None
    mqtt: str | None = None
    mqtt_outbox: str | None = None
    node: str = field(default_factory=socket.gethostname)
    max_faces: int = 2
    hold_frames: int = 2
    forget_frames: int = 25
    frame_queue: int = 50
    frame_queue_mb: float = 128.0
    window_queue: int = 16
    max_delay: float = 1.0
    prefetch_queue: int = 128
    max_batch: int = 32
    landmark_threads: int | None = None
    inference_threads: int | None = None
    precision: str = "fp32"
    int8_calibration: Path | None = None
    hwaccel: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.stride <= self.window:
            raise LipForensicsError(f"stride must be 1..{self.window}, got {self.stride}")
        if self.window < 5:
            raise LipForensicsError(f"window must be at least 5 frames, got {self.window}")
        positive = ("max_faces", "frame_queue", "window_queue", "prefetch_queue", "max_batch")
        for name in (*positive, "landmark_threads", "inference_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise LipForensicsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.give_up_after is not None and self.give_up_after <= 0:
            raise LipForensicsError(f"give_up_after must be positive, got {self.give_up_after}")
        if self.frame_queue_mb <= 0:
            raise LipForensicsError(f"frame_queue_mb must be positive, got {self.frame_queue_mb}")
        if self.max_delay <= 0:
            raise LipForensicsError(f"max_delay must be positive, got {self.max_delay}")
        if self.webhook is not None:
            _check_webhook(self.webhook)
        if self.mqtt is not None:
            parse_mqtt_url(self.mqtt)
        if not self.node.strip():
            raise LipForensicsError("node must be a non-empty name")
        if not 0 <= self.port <= 65535:
            raise LipForensicsError(f"port must be 0..65535, got {self.port}")
        if self.backend == "triton" or self.triton_url is not None:
            self.triton_target()  # a bad address, header or TLS file fails here
        check_hwaccel(self.hwaccel)
        if self.precision not in PRECISIONS:
            raise LipForensicsError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.hold_frames < 0 or self.forget_frames < self.hold_frames:
            raise LipForensicsError("need 0 <= hold_frames <= forget_frames")

    def triton_target(self) -> TritonTarget:
        """The Triton server to use (``backend = "triton"``).

        Raises:
            LipForensicsError: no ``triton_url``, or a bad address, header or TLS file.
        """
        if self.triton_url is None:
            raise LipForensicsError("--backend triton needs --triton-url HOST:PORT")
        return TritonTarget.parse(
            self.triton_url,
            ca=self.triton_ca,
            cert=self.triton_cert,
            key=self.triton_key,
            headers=self.triton_headers,
            timeout=self.triton_timeout,
        )

    @property
    def engine_threads(self) -> int:
        """Threads for the engine: ``inference_threads``, or half the cores."""
        return self.inference_threads or _half_the_cores()

    @property
    def landmark_workers(self) -> int:
        """Threads for landmarks: ``landmark_threads``, or one per core (with one thread
        on 2 cores, two streams lost frames whenever other programs took CPU time)."""
        return self.landmark_threads or _cores()


def _check_webhook(url: str) -> None:
    """Raise LipForensicsError unless ``url`` is an http(s) URL with a host."""
    parts = split_url(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise LipForensicsError(f"webhook must be an http:// or https:// URL, got {redact(url)!r}")


def _cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0))


def _half_the_cores() -> int:
    """Half the cores this process may use, at least one (the other half runs landmarks:
    on 2 cores one inference thread gave about half the latency of two, see
    docs/benchmarks.md)."""
    return max(1, _cores() // 2)


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the TOML file ``config`` (if any), then ``overrides`` that are not None.

    Raises:
        LipForensicsError: unreadable or invalid TOML, an unknown key or table, or a value
            of the wrong type.
    """
    values: dict[str, Any] = read_tables(config)["pipeline"] if config else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**checked(values, Settings))
