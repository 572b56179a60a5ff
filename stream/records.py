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
