"""Where events go: JSON lines (stdout or a file), a webhook, and in-memory subscribers.

Every sink takes JSON-ready dicts through :meth:`Sink.send`, which never blocks the event
loop, and is flushed and closed with ``await sink.close()``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator, Collection
from contextlib import suppress
from pathlib import Path
from typing import IO, Protocol

import aiohttp

from engines.errors import LipForensicsError


class Sink(Protocol):
    """A destination for events."""

    def send(self, event: dict[str, object]) -> None:
        """Take one event; must not block."""
        ...

    async def close(self) -> None:
        """Deliver what is pending (as far as possible) and release resources."""
        ...


class JsonlSink:
    """One JSON object per line, flushed per line; ``path`` "-" means standard output."""

    def __init__(self, path: str | Path = "-") -> None:
        self._owned = str(path) != "-"
        try:
            self._out: IO[str] = open(path, "a", encoding="utf-8") if self._owned else sys.stdout  # noqa: SIM115
        except OSError as error:
            raise LipForensicsError(f"cannot write events to {path}: {error.strerror}") from None

    def send(self, event: dict[str, object]) -> None:
        """Write the event as one line."""
        self._out.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._out.flush()

    async def close(self) -> None:
        """Close the file (standard output stays open)."""
        if self._owned:
            self._out.close()


class WebhookSink:
    """POST each event of the chosen ``types`` as JSON to ``url``, in order, from a bounded
    queue (the oldest event is dropped and counted when it is full).

    A failed delivery (connection error, timeout, HTTP 5xx or 429) is retried with
    exponential backoff and jitter, ``attempts`` times in all; other 4xx answers are final.

    Attributes:
        delivered, failed, dropped: event counts.
    """

    def __init__(
        self,
        url: str,
        *,
        types: Collection[str] = ("alert",),
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        queue_size: int = 1000,
    ) -> None:
        self.url = url
        self.types = frozenset(types)
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.delivered = self.failed = self.dropped = 0
        self._queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None

    def send(self, event: dict[str, object]) -> None:
        """Queue the event for delivery if its type is wanted."""
        if event.get("type") not in self.types:
            return
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._deliver_all())
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def close(self, grace: float = 5.0) -> None:
        """Wait up to ``grace`` seconds for pending deliveries, then stop."""
        if self._worker is None:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._worker.cancel()
        with suppress(asyncio.CancelledError):
            await self._worker

    async def _deliver_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                event = await self._queue.get()
                try:
                    if await self._deliver(session, event):
                        self.delivered += 1
                    else:
                        self.failed += 1
                finally:
                    self._queue.task_done()

    async def _deliver(self, session: aiohttp.ClientSession, event: dict[str, object]) -> bool:
        """POST one event, retrying transient failures; True when the receiver took it."""
        for attempt in range(self.attempts):
            try:
                async with session.post(self.url, json=event) as response:
                    if response.status < 400:
                        return True
                    if response.status < 500 and response.status != 429:
                        return False
            except (aiohttp.ClientError, TimeoutError):
                pass
            if attempt + 1 < self.attempts:
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        return False


class Broadcast:
    """Fan events out to in-memory subscribers (Server-Sent Events): each subscriber has a
    bounded queue, and a slow one loses its oldest events (counted in :attr:`dropped`)."""

    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.dropped = 0
        self._subscribers: set[asyncio.Queue[dict[str, object] | None]] = set()

    def send(self, event: dict[str, object]) -> None:
        """Hand the event to every subscriber."""
        for queue in self._subscribers:
            self._put(queue, event)

    async def subscribe(self) -> AsyncIterator[dict[str, object]]:
        """Events from now on, until the broadcast closes or the caller stops iterating."""
        queue: asyncio.Queue[dict[str, object] | None] = asyncio.Queue(self.queue_size)
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

    def _put(self, queue: asyncio.Queue[dict[str, object] | None], item: dict | None) -> None:
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(item)
