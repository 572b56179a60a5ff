"""The small typed records that flow between pipeline stages, and the events that leave it.

Every record keeps the source's own presentation time (``pts``, seconds) so that every
verdict and alert can say *when* in the stream it happened. The events (:data:`Event`) are
frozen records with enum fields, handed as they are to every sink, subscriber and page;
``to_dict()`` gives the JSON form where JSON is written (times to the microsecond).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from stream.alerts.policy import Level


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame from a source.

    Attributes:
        stream_id: name of the stream the frame came from (unique within a pipeline).
        pts: presentation time in seconds, in the source's own time base.
        image: RGB pixels, ``uint8`` array of shape (H, W, 3).
        arrival: ``time.monotonic()`` when the source handed the frame over; used to measure
            latency from arrival to verdict.
    """

    stream_id: str
    pts: float
    image: np.ndarray
    arrival: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """One face's mouth in one 25 fps frame, as the face stage hands it on.

    Attributes:
        face: the face's track id within its stream.
        crop: uint8 (96, 96) grayscale mouth crop, aligned to the mean face.
        box: the face's box in the frame, (x0, y0, x1, y1) normalised to 0..1 by the
            frame's width and height.
        cut: the face reaches beyond the frame's edge (:func:`stream.faces.framing.cut_by_frame`).
    """

    face: int
    crop: np.ndarray
    box: tuple[float, float, float, float]
    cut: bool = False


@dataclass(frozen=True, slots=True)
class FaceFrame:
    """What the face stage found in one 25 fps frame.

    Attributes:
        crops: one :class:`FaceCrop` per face seen (or held over a short gap).
        ended: track ids of faces gone for good; their windows end.
    """

    crops: tuple[FaceCrop, ...]
    ended: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MouthWindow:
    """Consecutive 25 fps mouth frames of one face, ready to score.

    Attributes:
        stream_id: the stream the face is in.
        face: the face's track id within the stream.
        first: 25 fps frame index (per stream) of the first frame; windows of one face start
            at increasing indices.
        pts: (start, end) seconds in the source's own time; ``end`` is the end of the last
            frame (its pts plus one 25 fps period), so a 25-frame window spans 1.0 s.
        frames: the window's frames, each a normalised 88 x 88 ``float32`` mouth crop.
        arrival: ``time.monotonic()`` when the frame that completed the window arrived.
        quality: where the face was, how big, at what rate its source delivered frames, and
            what that leaves of the verdict (:mod:`stream.windows.quality`).
    """

    stream_id: str
    face: int
    first: int
    pts: tuple[float, float]
    frames: tuple[np.ndarray, ...]
    arrival: float
    quality: WindowQuality | None = None


class Caveat(StrEnum):
    """Why a window's verdict is weaker than the network's usual: it is shown, and it cannot
    raise an alert on its own (JSON: the lower-case name, in a verdict's ``caveats``)."""

    TOO_SMALL = "too_small"  # the face is below the size floor
    LOW_FRAME_RATE = "low_frame_rate"  # the source delivered frames below the rate floor
    FACE_CUT = "face_cut"  # the face reached beyond the frame's edge (chin cut off)


@dataclass(frozen=True, slots=True)
class WindowQuality:
    """What a verdict says about its window besides the logit.

    Attributes:
        box: the face's box in its last frame, (x0, y0, x1, y1) normalised to 0..1.
        frame_size: the source frame's (width, height) in pixels.
        fps: the rate at which the source delivered distinct frames during the window.
        face_px: the face's height in source pixels (median over the window).
        caveats: what makes the verdict weaker (none: a face the network was made for).
    """

    box: tuple[float, float, float, float]
    frame_size: tuple[int, int]
    fps: float
    face_px: float
    caveats: tuple[Caveat, ...] = ()

    def fields(self) -> dict[str, object]:
        """The JSON form: ``box``, ``frame`` ([width, height]), ``fps``, ``face_px``,
        ``caveats``."""
        return {
            "box": [round(v, 4) for v in self.box],
            "frame": list(self.frame_size),
            "fps": round(self.fps, 1),
            "face_px": round(self.face_px),
            "caveats": [str(c) for c in self.caveats],
        }


# ---- the events that leave the pipeline (every sink, subscriber and page takes these) ----

#: ended streams whose per-stream state a holder (the pipeline, the MQTT sink) keeps;
#: older ones are freed.
KEEP_ENDED = 64


class Connection(StrEnum):
    """Where a stream stands (a :class:`StreamStatus`'s ``status``); the JSON form is the
    lower-case name."""

    STARTING = "starting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    #: connected, but no new picture: nothing arrives, or the same picture again (a
    #: publisher that stopped its video, a frozen tab)
    STALLED = "stalled"
    ENDED = "ended"
    ERROR = "error"

    @property
    def down(self) -> bool:
        """True while the stream is not delivering frames and should come back."""
        return self in (
            Connection.DISCONNECTED,
            Connection.RECONNECTING,
            Connection.STALLED,
            Connection.ERROR,
        )


class Availability(StrEnum):
    """Whether the node's inference backend answers (a :class:`BackendStatus`'s
    ``status``)."""

    OK = "ok"
    DEGRADED = "degraded"


def _check(value: object, kind: type, what: str) -> None:
    """Refuse a field of the wrong type (a string where an enum belongs)."""
    if not isinstance(value, kind):
        raise TypeError(f"{what} must be a {kind.__name__}, not {value!r}")


def _stamped(fields: dict[str, object], wall_time: float, kind: str, **tail: object) -> dict:
    """An event's JSON form: its fields, then ``wall_time`` (to the microsecond), ``type``
    and whatever ``tail`` holds that is not None (an alert's ``id``, the ``node``)."""
    data = {**fields, "wall_time": round(wall_time, 6), "type": kind}
    data.update((key, value) for key, value in tail.items() if value is not None)
    return data


def _interval(seconds: float | None) -> float | None:
    """A verdict interval as JSON: to the millisecond, or null."""
    return None if seconds is None else round(seconds, 3)


def _seconds(pts: tuple[float, ...]) -> list[float]:
    """Stream times as JSON: a list, each to the microsecond."""
    return [round(t, 6) for t in pts]


@dataclass(frozen=True, slots=True)
class CallParticipant:
    """Who a call room's stream is (JSON ``participant``: ``room``, ``name``, ``feed``): on
    every event of a participant's stream, absent from every other stream's.

    Attributes:
        room: the room's name on this node (its id unless a ``[cameras]`` or ``[rooms]``
            name is given): the prefix of its participants' stream ids.
        name: the participant's display name as the room gives it ("" when none).
        feed: the participant's id in the room (Janus's feed id).
    """

    room: str
    name: str
    feed: int | str

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``room, name, feed``)."""
        return {"room": self.room, "name": self.name, "feed": self.feed}


def _who(participant: CallParticipant | None) -> dict[str, object]:
    """``{"participant": {...}}`` for a participant's stream, nothing for any other."""
    return {} if participant is None else {"participant": participant.to_dict()}


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A change in a stream's connection; ``detail`` says why in one line (JSON ``type``
    ``status``); ``participant``: the call participant whose stream it is (None: not a call
    room's)."""

    stream: str
    status: Connection
    detail: str = ""
    wall_time: float = field(default_factory=time.time)
    node: str | None = None
    participant: CallParticipant | None = None

    def __post_init__(self) -> None:
        _check(self.status, Connection, "a stream's status")

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``stream, status, detail[, participant], wall_time, type,
        node``)."""
        fields = {"stream": self.stream, "status": str(self.status), "detail": self.detail}
        fields.update(_who(self.participant))
        return _stamped(fields, self.wall_time, "status", node=self.node)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The score of one window of one face (JSON ``type`` ``verdict``).

    Attributes:
        stream, face, pts: which window (see :class:`MouthWindow`).
        logit: the network's output (label 1 = fake).
        probability: the fake probability: the calibrated map of the thresholds file applied
            to ``logit``, or its sigmoid when none is calibrated.
        level: the face's alert level after this window (JSON: ``clear``, ``suspicious``,
            ``alert``).
        latency_ms: from the arrival of the window's last frame to this verdict.
        quality: the face's box, frame size, source frame rate, size and caveats (None for
            verdicts not made from a live window).
        interval: seconds of stream time since this face's previous verdict (None for its
            first): 0.2 at stride 5, longer while the faces of a crowded stream take turns.
        participant: the call participant whose stream it is (None: not a call room's).
    """

    stream: str
    face: int
    pts: tuple[float, float]
    logit: float
    probability: float
    level: Level
    latency_ms: float
    wall_time: float = field(default_factory=time.time)
    node: str | None = None
    quality: WindowQuality | None = None
    interval: float | None = None
    participant: CallParticipant | None = None

    def __post_init__(self) -> None:
        _check(self.level, Level, "a verdict's level")

    def fields(self) -> dict[str, object]:
        """The window's fields as JSON, without ``wall_time``, ``type`` or ``node``."""
        return {
            "stream": self.stream,
            "face": self.face,
            "pts": _seconds(self.pts),
            "logit": self.logit,
            "probability": self.probability,
            "level": str(self.level),
            "latency_ms": self.latency_ms,
            **(self.quality.fields() if self.quality is not None else {}),
            **({"interval": _interval(self.interval)} if self.quality is not None else {}),
            **_who(self.participant),
        }

    def to_dict(self) -> dict[str, object]:
        """The JSON form (the :meth:`fields`, ``wall_time``, ``type``, ``node``)."""
        return _stamped(self.fields(), self.wall_time, "verdict", node=self.node)


@dataclass(frozen=True, slots=True)
class Alert:
    """A face reached the alert level: the verdict that took it there, and a unique ``id``
    (for de-duplication downstream; the key of its crops). JSON ``type`` ``alert``: the
    verdict's fields, then ``id``."""

    verdict: Verdict
    id: str

    @property
    def stream(self) -> str:
        """The stream of the face."""
        return self.verdict.stream

    def to_dict(self) -> dict[str, object]:
        """The JSON form (a verdict's, with ``type`` ``alert`` and ``id``)."""
        verdict = self.verdict
        return _stamped(verdict.fields(), verdict.wall_time, "alert", id=self.id, node=verdict.node)


@dataclass(frozen=True, slots=True)
class FaceEnded:
    """A face left the picture: its track ended (missing for longer than the face stage
    holds a track), after its last verdict. Not sent for the faces of a stream that ends
    or reconnects: its status says that every face is gone. JSON ``type`` ``face_ended``;
    ``pts`` is the stream time (seconds) at which the face was found gone; ``participant``
    as in :class:`StreamStatus`."""

    stream: str
    face: int
    pts: float
    wall_time: float = field(default_factory=time.time)
    node: str | None = None
    participant: CallParticipant | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``stream, face, pts[, participant], wall_time, type, node``)."""
        fields = {"stream": self.stream, "face": self.face, "pts": round(self.pts, 6)}
        fields.update(_who(self.participant))
        return _stamped(fields, self.wall_time, "face_ended", node=self.node)


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """The node's inference backend became unavailable (``degraded``) or came back
    (``ok``): the whole node's, never a stream's (JSON ``type`` ``backend``)."""

    backend: str
    status: Availability
    detail: str
    wall_time: float = field(default_factory=time.time)
    node: str | None = None

    def __post_init__(self) -> None:
        _check(self.status, Availability, "a backend's status")

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``backend, status, detail, wall_time, type, node``)."""
        fields = {"backend": self.backend, "status": str(self.status), "detail": self.detail}
        return _stamped(fields, self.wall_time, "backend", node=self.node)


#: every event that leaves the pipeline
Event = StreamStatus | Verdict | Alert | FaceEnded | BackendStatus
#: the events of one stream (each has ``stream``)
StreamEvent = StreamStatus | Verdict | Alert | FaceEnded


def from_node(event: Event, node: str) -> Event:
    """``event`` as sent by ``node`` (an alert's node is its verdict's)."""
    if isinstance(event, Alert):
        return replace(event, verdict=replace(event.verdict, node=node))
    return replace(event, node=node)
