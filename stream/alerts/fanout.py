"""Every event goes out through one place: the sinks in order, then the in-memory
subscribers; each event carries the name of the node it comes from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from stream.alerts.broadcast import Broadcast
from stream.alerts.sinks import Sink


class Event(Protocol):
    """Anything with a JSON-ready form (verdicts, alerts, status events)."""

    def to_dict(self) -> dict[str, object]: ...


class Fanout:
    """Hands each event to every sink (a webhook's durable outbox first, if it is first in
    ``sinks``) and to every subscriber, with ``node`` added (when given)."""

    def __init__(self, sinks: Sequence[Sink] = (), node: str | None = None) -> None:
        self.sinks = list(sinks)
        self.node = node
        self.broadcast = Broadcast()

    def send(self, event: Event) -> None:
        """One event to everyone; never blocks."""
        data = event.to_dict()
        if self.node is not None:
            data["node"] = self.node
        for sink in self.sinks:
            sink.send(data)
        self.broadcast.send(data)

    def subscribe(self) -> AsyncIterator[dict[str, object]]:
        """Every event from now on; a slow subscriber loses its oldest events."""
        return self.broadcast.subscribe()

    async def close(self) -> None:
        """Flush and close the sinks, then end the subscriptions."""
        for sink in self.sinks:
            await sink.close()
        await self.broadcast.close()
