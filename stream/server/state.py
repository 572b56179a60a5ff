"""What a page opened late needs to see at once: the live state, kept from the events.

:class:`LiveState` follows every pipeline event and keeps, bounded in memory: each stream's
latest status with its reconnect count, each face's latest verdict and its window
probabilities over the last :data:`HISTORY_SECONDS`, and the most recent alerts.
:meth:`LiveState.snapshot` is the JSON of ``GET /state``; the page then follows
``/events`` from there.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping

#: seconds of window probabilities kept per face (the dashboard's chart).
HISTORY_SECONDS = 60.0
#: streams and faces remembered (the least recently updated are forgotten first).
MAX_STREAMS = 64
MAX_FACES = 128
#: alerts in the snapshot, newest first.
MAX_ALERTS = 50

Event = Mapping[str, object]


class LiveState:
    """Streams, faces and recent alerts, as of the last event applied (see the module)."""

    def __init__(self, thresholds: Mapping[str, float] | None = None) -> None:
        """``thresholds``: the suspicious and alert thresholds as fake probabilities."""
        self.thresholds = dict(thresholds or {})
        self.streams: OrderedDict[str, dict[str, object]] = OrderedDict()
        self.faces: OrderedDict[str, dict[str, object]] = OrderedDict()
        self.history: dict[str, deque[tuple[float, float]]] = {}
        self.alerts: deque[dict[str, object]] = deque(maxlen=MAX_ALERTS)

    def apply(self, event: Event) -> None:
        """Take one event (a dict as the sinks get it) into the state."""
        kind = event.get("type")
        if kind == "status":
            self._status(event)
        elif kind in ("verdict", "alert"):
            self._verdict(event)
            if kind == "alert":
                self.alerts.appendleft(dict(event))

    def snapshot(self) -> dict[str, object]:
        """The JSON-ready state: ``streams``, ``faces`` (each with its ``history`` of
        ``[wall_time, probability]``), ``alerts`` (newest first) and ``thresholds``."""
        faces = []
        for key, verdict in self.faces.items():
            points = [[round(t, 3), round(p, 4)] for t, p in self.history.get(key, ())]
            faces.append({**verdict, "history": points})
        return {
            "streams": list(self.streams.values()),
            "faces": faces,
            "alerts": list(self.alerts),
            "thresholds": self.thresholds,
        }

    def _status(self, event: Event) -> None:
        stream = str(event.get("stream"))
        known = self.streams.pop(stream, None) or {"stream": stream, "reconnects": 0}
        reconnects = int(known["reconnects"]) + (event.get("status") == "reconnecting")
        known.update(
            status=event.get("status"),
            detail=event.get("detail", ""),
            wall_time=event.get("wall_time"),
            reconnects=reconnects,
        )
        self.streams[stream] = known
        _trim(self.streams, MAX_STREAMS)
        if event.get("status") == "ended":
            for key in [k for k, v in self.faces.items() if v.get("stream") == stream]:
                del self.faces[key]
                self.history.pop(key, None)

    def _verdict(self, event: Event) -> None:
        key = f"{event.get('stream')}/{event.get('face')}"
        self.faces.pop(key, None)
        self.faces[key] = {k: v for k, v in event.items() if k not in ("type", "id")}
        for old in _trim(self.faces, MAX_FACES):
            self.history.pop(old, None)
        wall_time, probability = event.get("wall_time"), event.get("probability")
        if isinstance(wall_time, int | float) and isinstance(probability, int | float):
            points = self.history.setdefault(key, deque())
            if event.get("type") == "verdict":
                points.append((float(wall_time), float(probability)))
            while points and points[0][0] < wall_time - HISTORY_SECONDS:
                points.popleft()


def _trim(table: OrderedDict[str, dict[str, object]], size: int) -> list[str]:
    """Drop the oldest entries of ``table`` beyond ``size``; their keys."""
    dropped = []
    while len(table) > size:
        dropped.append(table.popitem(last=False)[0])
    return dropped
