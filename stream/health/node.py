"""Is the pipeline keeping up? One small object that answers ``/healthz`` from counts the
stream workers keep, not from the Prometheus series."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from stream.events import Connection

#: seconds after the last dropped frame or window during which health says "degraded".
DEGRADED_FOR = 10.0


@dataclass(slots=True)
class StreamCounts:
    """What one stream has done so far."""

    frames: int = 0
    frames_dropped: int = 0
    windows_scored: int = 0


class StreamView(Protocol):
    """What health reads of a stream worker."""

    status: Connection
    #: the last error not followed by a connection (None: the stream is fine)
    failure: str | None
    counts: StreamCounts

    @property
    def faces(self) -> int: ...

    @property
    def faces_at_once(self) -> int | None: ...

    intervals: Mapping[int, float]

    @property
    def input_fps(self) -> float | None: ...


class Health:
    """Degraded while frames or windows were dropped in the last ``degraded_for`` seconds,
    while a stream is down (disconnected, reconnecting, stalled, failed) or ended after an
    error, or while the inference backend is unavailable."""

    def __init__(self, degraded_for: float = DEGRADED_FOR) -> None:
        self.degraded_for = degraded_for
        self._last_drop = -math.inf

    def frames_dropped(self) -> None:
        """Note that a stream just lost frames."""
        self._last_drop = time.monotonic()

    def report(
        self,
        streams: Mapping[str, StreamView],
        *,
        windows_dropped: Mapping[str, int],
        windows_last_dropped: float,
        backlog: int,
        backend_down: str | None = None,
    ) -> dict[str, object]:
        """``{"status": "ok" | "degraded", "reasons": [...], "backlog": n, "streams": {...}}``;
        ``backend_down``: why the inference backend is unavailable (None: it answers)."""
        reasons = [backend_down] if backend_down else []
        if time.monotonic() - max(self._last_drop, windows_last_dropped) < self.degraded_for:
            reasons.append("falling behind: frames or windows dropped recently")
        described = {}
        for stream_id, stream in streams.items():
            if stream.status.down:
                reasons.append(f"stream {stream_id} is {stream.status}")
            elif stream.failure:
                reasons.append(f"stream {stream_id} {stream.status} after an error")
            described[stream_id] = {
                "status": str(stream.status),
                "faces": stream.faces,
                "input_fps": None if stream.input_fps is None else round(stream.input_fps, 1),
                "faces_at_once": stream.faces_at_once,
                "verdict_intervals": {
                    str(face): round(seconds, 3) for face, seconds in stream.intervals.items()
                },
                "frames": stream.counts.frames,
                "frames_dropped": stream.counts.frames_dropped,
                "windows_scored": stream.counts.windows_scored,
                "windows_dropped": windows_dropped.get(stream_id, 0),
            }
        return {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "backlog": backlog,
            "streams": described,
        }


#: the one reason an anonymous caller of /healthz is given for a degraded status.
ASK_WITH_TOKEN = "details with the bearer token"


def public_report(report: Mapping[str, object]) -> dict[str, object]:
    """What anyone may see of a :meth:`Health.report`: the status, without the reasons or
    streams (they name the streams)."""
    degraded = report.get("status") != "ok"
    return {"status": report.get("status"), "reasons": [ASK_WITH_TOKEN] if degraded else []}
