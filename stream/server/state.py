"""What a page opened late needs to see at once: the live state, kept from the events.

:class:`LiveState` follows every pipeline event record and keeps, bounded in memory: each
stream's latest status with its reconnect count (and, for a call room's participant, who it
is), each face's latest verdict and its window
probabilities over the last :data:`HISTORY_SECONDS` (until the face leaves or its stream
ends), the most recent alerts, and the inference backend's latest status.
:meth:`LiveState.snapshot` is the JSON of ``GET /state``; the page then follows ``/events``
from there.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping

from stream.events import (
    Alert,
    BackendStatus,
    Connection,
    Event,
    FaceEnded,
    StreamStatus,
    Verdict,
)

#: seconds of window probabilities kept per face (the dashboard's chart).
HISTORY_SECONDS = 60.0
#: streams and faces remembered (the least recently updated are forgotten first).
MAX_STREAMS = 64
MAX_FACES = 128
#: alerts in the snapshot, newest first.
MAX_ALERTS = 50


class LiveState:
    """Streams, faces and recent alerts, as of the last event applied (see the module)."""

    def __init__(self, thresholds: Mapping[str, float] | None = None) -> None:
        """``thresholds``: the suspicious and alert thresholds as fake probabilities."""
        self.thresholds = dict(thresholds or {})
        self.streams: OrderedDict[str, dict[str, object]] = OrderedDict()
        self.faces: OrderedDict[str, dict[str, object]] = OrderedDict()
        self.history: dict[str, deque[tuple[float, float]]] = {}
        self.alerts: deque[dict[str, object]] = deque(maxlen=MAX_ALERTS)
        self.backend: dict[str, object] | None = None

    def apply(self, event: Event) -> None:
        """Take one event record into the state."""
        match event:
            case StreamStatus():
                self._status(event)
            case Verdict():
                self._verdict(event)
                self._chart(event)
            case Alert():
                self._verdict(event.verdict)
                self.alerts.appendleft(event.to_dict())
            case FaceEnded():
                self._forget_face(f"{event.stream}/{event.face}")
            case BackendStatus():
                self.backend = event.to_dict()

    def snapshot(self) -> dict[str, object]:
        """The JSON-ready state: ``streams``, ``faces`` (each with its ``history`` of
        ``[wall_time, probability]``), ``alerts`` (newest first), ``thresholds`` and
        ``backend`` (the inference backend's latest status event; None before any)."""
        faces = []
        for key, verdict in self.faces.items():
            points = [[round(t, 3), round(p, 4)] for t, p in self.history.get(key, ())]
            faces.append({**verdict, "history": points})
        return {
            "streams": list(self.streams.values()),
            "faces": faces,
            "alerts": list(self.alerts),
            "thresholds": self.thresholds,
            "backend": self.backend,
        }

    def _status(self, event: StreamStatus) -> None:
        known = self.streams.pop(event.stream, None) or {"stream": event.stream, "reconnects": 0}
        reconnects = int(known["reconnects"]) + (event.status is Connection.RECONNECTING)
        data = event.to_dict()
        known.update(
            status=data["status"],
            detail=data["detail"],
            wall_time=data["wall_time"],
            reconnects=reconnects,
        )
        if event.participant is not None:
            known["participant"] = data["participant"]
        self.streams[event.stream] = known
        _trim(self.streams, MAX_STREAMS)
        if event.status is Connection.ENDED:
            for key in [k for k, v in self.faces.items() if v.get("stream") == event.stream]:
                self._forget_face(key)

    def _verdict(self, verdict: Verdict) -> None:
        """The face's latest verdict (an alert's too)."""
        key = f"{verdict.stream}/{verdict.face}"
        self.faces.pop(key, None)
        data = verdict.to_dict()
        del data["type"]
        self.faces[key] = data
        for old in _trim(self.faces, MAX_FACES):
            self.history.pop(old, None)

    def _chart(self, verdict: Verdict) -> None:
        """The verdict's point on its face's chart; points older than the chart dropped."""
        points = self.history.setdefault(f"{verdict.stream}/{verdict.face}", deque())
        points.append((verdict.wall_time, verdict.probability))
        while points and points[0][0] < verdict.wall_time - HISTORY_SECONDS:
            points.popleft()

    def _forget_face(self, key: str) -> None:
        self.faces.pop(key, None)
        self.history.pop(key, None)


def _trim(table: OrderedDict[str, dict[str, object]], size: int) -> list[str]:
    """Drop the oldest entries of ``table`` beyond ``size``; their keys."""
    dropped = []
    while len(table) > size:
        dropped.append(table.popitem(last=False)[0])
    return dropped
