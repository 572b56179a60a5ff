"""Per stream: is a face of it at ALERT right now? Followed from the events alone.

Each verdict sets its face's level. A face that has had no verdict for ``stale_after``
seconds has left (the pipeline sends no event when a track ends), and any status event of
a stream (a reconnect, the end) clears its faces: a new connection starts new tracks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stream.alerts.policy import Level

#: seconds without a verdict after which a face no longer holds its stream at ALERT.
STALE_AFTER = 5.0

_ALERT = str(Level.ALERT)


@dataclass
class _Stream:
    faces: dict[object, tuple[bool, float]] = field(default_factory=dict)  # face: (alert, seen)
    on: bool = False


class AlertStates:
    """Each stream's ON (a face at ALERT) or OFF, from its events (see the module doc)."""

    def __init__(
        self, stale_after: float = STALE_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._streams: dict[str, _Stream] = {}

    def update(self, event: dict[str, object]) -> bool | None:
        """Take one event; returns the stream's new state (True = ON) when it changed or the
        stream is new, else None."""
        name = str(event.get("stream", ""))
        new = name not in self._streams
        stream = self._streams.setdefault(name, _Stream())
        if event.get("type") == "status":
            stream.faces.clear()
        elif event.get("type") in ("verdict", "alert"):
            stream.faces[event.get("face")] = (event.get("level") == _ALERT, self._clock())
        changed = self._settle(stream)
        return stream.on if changed is None and new else changed

    def expire(self) -> dict[str, bool]:
        """Forget faces not seen for ``stale_after`` seconds; the streams whose state
        changed, with their new state."""
        oldest = self._clock() - self.stale_after
        changed: dict[str, bool] = {}
        for name, stream in self._streams.items():
            stale = [face for face, (_, seen) in stream.faces.items() if seen < oldest]
            for face in stale:
                del stream.faces[face]
            if self._settle(stream) is not None:
                changed[name] = stream.on
        return changed

    def forget(self, stream: str) -> None:
        """Drop a stream (one that ended long ago)."""
        self._streams.pop(stream, None)

    def states(self) -> dict[str, bool]:
        """Every stream seen so far and its state."""
        return {name: stream.on for name, stream in self._streams.items()}

    @staticmethod
    def _settle(stream: _Stream) -> bool | None:
        """Recompute the stream's state; the new state if it changed, else None."""
        on = any(alert for alert, _ in stream.faces.values())
        if on == stream.on:
            return None
        stream.on = on
        return on
