"""The small setting groups of a pipeline: how sources are read, how faces are followed and
windowed, where events go, and this node's place in a fleet (the engine's group is in
:mod:`stream.settings.engine`, the server's in :mod:`stream.settings.server`)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from engines.method import CLIP_FRAMES
from errors import LipForensicsError
from stream.alerts.mqtt_address import parse_mqtt_url
from stream.faces.networks import landmark_network
from stream.settings.limits import check_positive, check_whole
from stream.settings.shard import parse_shard
from stream.sources.hwaccel import check_hwaccel
from stream.sources.urls import redact, split_url

#: seconds in a year: the longest wait any setting may ask for.
YEAR = 365 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """How each source is read (``[sources]``).

    Attributes:
        realtime: pace file sources like cameras.
        give_up_after: seconds a camera may stay unreachable before its stream ends with an
            error (None: retry for ever).
        hwaccel: PyAV hardware decoding for files and RTSP cameras (``"cuda"``,
            ``"vaapi"``, ...; None: software), see :mod:`stream.sources.hwaccel`.
        frame_queue: 25 fps frames buffered per live stream before the oldest are dropped.
        frame_queue_mb: the same buffer's limit in MB of decoded RGB frames (a 1080p frame is
            6 MB: 128 MB hold 21 of them), for files too (they wait instead of dropping).
        max_participants: call-room participants ``run`` scores at once (those beyond wait,
            with an ``error`` status that says so, until one leaves); ``serve`` counts them
            in its ``max_streams`` with every other stream instead.
    """

    realtime: bool = False
    give_up_after: float | None = None
    hwaccel: str | None = None
    frame_queue: int = 50
    frame_queue_mb: float = 128.0
    max_participants: int = 16

    def __post_init__(self) -> None:
        check_whole(self, {"frame_queue": (1, 10_000), "max_participants": (1, 1000)})
        check_positive(self, {"give_up_after": YEAR, "frame_queue_mb": 65_536.0})
        check_hwaccel(self.hwaccel)


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """How faces are found, followed and cut into windows (``[faces]``).

    Attributes:
        max_faces: faces tracked per stream (25 covers a 5x5 call gallery; each costs
            landmarks on every frame: docs/calls.md).
        hold_frames: a face missing for at most this many frames keeps its window (the
            last crop stands in); longer ends the window.
        forget_frames: a face missing for longer than this gets a new id when it returns.
        landmark_threads: threads running the streams' face stages (the streams share
            one set of face models; None: one per core, see :attr:`landmark_workers`).
        landmarks: the landmark network: ``"full"`` (MediaPipe Face Landmarker's, the
            crops the scan makes) or ``"lite"`` (MediaPipe's earlier face mesh network:
            under half the CPU per face, crops 1-2 pixels elsewhere;
            docs/crops.md).
        window: frames per window (5 to the network's 25).
        stride: frames between consecutive windows of a face (25 = non-overlapping).
    """

    max_faces: int = 25
    hold_frames: int = 2
    forget_frames: int = 25
    landmark_threads: int | None = None
    landmarks: str = "full"
    window: int = CLIP_FRAMES
    stride: int = 5

    def __post_init__(self) -> None:
        check_whole(
            self,
            {
                "window": (5, CLIP_FRAMES),
                "stride": (1, self.window),
                "max_faces": (1, 64),
                "landmark_threads": (1, 256),
                "hold_frames": (0, 25 * 60),
                "forget_frames": (self.hold_frames, 25 * 3600),
            },
        )
        landmark_network(self.landmarks)

    @property
    def landmark_workers(self) -> int:
        """Threads for landmarks: ``landmark_threads``, or one per core (with one thread
        on 2 cores, two streams lost frames whenever other programs took CPU time)."""
        return self.landmark_threads or cores()


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Where events go (``[alerts]``).

    Attributes:
        jsonl: where JSON-line events go ("-" = standard output, None = nowhere).
        webhook: URL that receives alert events by POST (None = no webhook).
        webhook_outbox: SQLite file holding webhook events until delivered (None: next to
            the ``jsonl`` file, else in ~/.local/state/lipforensics; see stream/alerts/outbox.py).
        mqtt: MQTT broker for events, ``mqtt://[USER:PASS@]HOST[:PORT][/PREFIX]`` or
            ``mqtts://`` (None = no MQTT; see docs/mqtt.md).
        mqtt_outbox: SQLite file holding MQTT alerts until the broker has them (None: as
            ``webhook_outbox``, named ``mqtt-outbox``).
    """

    jsonl: str | None = "-"
    webhook: str | None = None
    webhook_outbox: str | None = None
    mqtt: str | None = None
    mqtt_outbox: str | None = None

    def __post_init__(self) -> None:
        if self.webhook is not None:
            parts = split_url(self.webhook)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                shown = redact(self.webhook)
                raise LipForensicsError(
                    f"webhook must be an http:// or https:// URL, got {shown!r}"
                )
        if self.mqtt is not None:
            parse_mqtt_url(self.mqtt)


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """This node among others (``[fleet]``).

    Attributes:
        node: this node's name, on every event, in /metrics and in the MQTT topics (default:
            the host name).
        shard: ``"K/N"``: ``run`` keeps only the cameras that node K of N gets by
            rendezvous hashing (:mod:`stream.settings.shard`; None: every camera).
    """

    node: str = field(default_factory=socket.gethostname)
    shard: str | None = None

    def __post_init__(self) -> None:
        if not self.node.strip():
            raise LipForensicsError("node must be a non-empty name")
        if self.shard is not None:
            parse_shard(self.shard)


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0))
