"""The small typed records that flow between pipeline stages.

Every record keeps the source's own presentation time (``pts``, seconds) so that every
verdict and alert can say *when* in the stream it happened.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
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


class StreamStatus(StrEnum):
    """Where a stream stands; the JSON form is the lower-case name."""

    STARTING = "starting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    ERROR = "error"

    @property
    def down(self) -> bool:
        """True while the stream is not delivering frames and should come back."""
        return self in (StreamStatus.DISCONNECTED, StreamStatus.RECONNECTING, StreamStatus.ERROR)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A change in a source's connection (:class:`StreamStatus`); ``detail`` says why in one
    line."""

    stream: str
    status: StreamStatus
    detail: str = ""
    wall_time: float = field(default_factory=time.time)
    type: str = "status"

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form used by every sink."""
        data = asdict(self)
        data["status"] = str(self.status)
        data["wall_time"] = round(self.wall_time, 6)
        return data


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """One face's mouth in one 25 fps frame, as the face stage hands it on.

    Attributes:
        face: the face's track id within its stream.
        crop: uint8 (96, 96) grayscale mouth crop, aligned to the mean face.
    """

    face: int
    crop: np.ndarray


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
    """

    stream_id: str
    face: int
    first: int
    pts: tuple[float, float]
    frames: tuple[np.ndarray, ...]
    arrival: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The score of one window, or (``type="alert"``) a change of a face's alert level.

    Attributes:
        stream, face, pts: which window (see :class:`MouthWindow`).
        logit: the network's output (label 1 = fake); ``probability`` is its sigmoid.
        level: the face's alert level after this window (JSON: ``clear``, ``suspicious``,
            ``alert``).
        latency_ms: from the arrival of the window's last frame to this verdict.
        id: unique id of an alert (for de-duplication downstream); empty for verdicts.
    """

    stream: str
    face: int
    pts: tuple[float, float]
    logit: float
    probability: float
    level: Level
    latency_ms: float
    wall_time: float = field(default_factory=time.time)
    type: str = "verdict"
    id: str = ""

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form used by every sink (``id`` only on alerts)."""
        data = asdict(self)
        data["pts"] = [round(t, 6) for t in self.pts]
        data["wall_time"] = round(self.wall_time, 6)
        data["level"] = str(self.level)
        if not self.id:
            del data["id"]
        return data
