"""In-memory subscribers of the event stream (Server-Sent Events, the Python API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from stream.events import Event


class Broadcast:
    """Fan events out to in-memory subscribers (Server-Sent Events): each subscriber has a
    bounded queue, and a slow one loses its oldest events (counted in :attr:`dropped`)."""

    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.dropped = 0
        self._subscribers: set[asyncio.Queue[Event | None]] = set()

    def send(self, event: Event) -> None:
        """Hand the event record to every subscriber."""
        for queue in self._subscribers:
            self._put(queue, event)

    async def subscribe(self) -> AsyncIterator[Event]:
        """Events from now on, until the broadcast closes or the caller stops iterating."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        """How many subscribers are listening."""
        return len(self._subscribers)

    async def close(self) -> None:
        """End every subscription (after the events already queued)."""
        for queue in self._subscribers:
            self._put(queue, None)

    def _put(self, queue: asyncio.Queue[Event | None], item: Event | None) -> None:
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(item)
