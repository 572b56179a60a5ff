"""The small typed records that flow between pipeline stages.

Every record keeps the source's own presentation time (``pts``, seconds) so that every
verdict and alert can say *when* in the stream it happened.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np


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
class StatusEvent:
    """A change in a source's connection: ``connected``, ``disconnected``, ``reconnecting``,
    ``ended`` or ``error``; ``detail`` says why in one line."""

    stream: str
    status: str
    detail: str = ""
    wall_time: float = field(default_factory=time.time)
    type: str = "status"

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form used by every sink."""
        return asdict(self)


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
        level: the face's alert level after this window (``clear``, ``suspicious``, ``alert``).
        latency_ms: from the arrival of the window's last frame to this verdict.
        id: unique id of an alert (for de-duplication downstream); empty for verdicts.
    """

    stream: str
    face: int
    pts: tuple[float, float]
    logit: float
    probability: float
    level: str
    latency_ms: float
    wall_time: float = field(default_factory=time.time)
    type: str = "verdict"
    id: str = ""

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form used by every sink (``id`` only on alerts)."""
        data = asdict(self)
        data["pts"] = list(self.pts)
        if not self.id:
            del data["id"]
        return data
