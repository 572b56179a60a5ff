"""Every event goes out through one place: the sinks in order, then the in-memory
subscribers; each event carries the name of the node it comes from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from stream.alerts.broadcast import Broadcast
from stream.alerts.sinks import Sink
from stream.events import Event, from_node


class Fanout:
    """Hands each event record to every sink (a webhook's durable outbox first, if it is
    first in ``sinks``) and to every subscriber, with ``node`` set (when given)."""

    def __init__(self, sinks: Sequence[Sink] = (), node: str | None = None) -> None:
        self.sinks = list(sinks)
        self.node = node
        self.broadcast = Broadcast()

    def send(self, event: Event) -> None:
        """One event to everyone; never blocks."""
        if self.node is not None:
            event = from_node(event, self.node)
        for sink in self.sinks:
            sink.send(event)
        self.broadcast.send(event)

    def subscribe(self) -> AsyncIterator[Event]:
        """Every event from now on; a slow subscriber loses its oldest events."""
        return self.broadcast.subscribe()

    async def close(self) -> None:
        """Flush and close the sinks, then end the subscriptions."""
        for sink in self.sinks:
            await sink.close()
        await self.broadcast.close()
