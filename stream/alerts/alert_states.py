"""Per stream: is a face of it at ALERT right now? Followed from the events alone.

Each verdict (and alert) sets its face's level; a :class:`~stream.events.FaceEnded` removes
the face (it left the picture); any status of a stream (a reconnect, the end) clears its
faces: a new connection starts new tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.alerts.policy import Level
from stream.events import Alert, FaceEnded, StreamEvent, StreamStatus, Verdict


@dataclass
class _Stream:
    faces: dict[int, bool] = field(default_factory=dict)  # face: at ALERT
    on: bool = False


class AlertStates:
    """Each stream's ON (a face at ALERT) or OFF, from its events (see the module doc)."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}

    def update(self, event: StreamEvent) -> bool | None:
        """Take one event of a stream; returns the stream's new state (True = ON) when it
        changed or the stream is new, else None."""
        new = event.stream not in self._streams
        stream = self._streams.setdefault(event.stream, _Stream())
        match event:
            case StreamStatus():
                stream.faces.clear()
            case Verdict(face=face, level=level) | Alert(verdict=Verdict(face=face, level=level)):
                stream.faces[face] = level is Level.ALERT
            case FaceEnded(face=face):
                stream.faces.pop(face, None)
        changed = self._settle(stream)
        return stream.on if changed is None and new else changed

    def forget(self, stream: str) -> None:
        """Drop a stream (one that ended long ago)."""
        self._streams.pop(stream, None)

    def states(self) -> dict[str, bool]:
        """Every stream seen so far and its state."""
        return {name: stream.on for name, stream in self._streams.items()}

    @staticmethod
    def _settle(stream: _Stream) -> bool | None:
        """Recompute the stream's state; the new state if it changed, else None."""
        on = any(stream.faces.values())
        if on == stream.on:
            return None
        stream.on = on
        return on
