"""A FIFO bounded by item count *and* bytes: one stream's decoded frames.

A 1080p RGB frame is 6 MB and a 4K one 25 MB, so a count alone does not bound memory: the
same 50 frames are 18 MB from a 400x300 camera and 1.2 GB from a 4K one. ``put`` waits
while the queue is full (a file is read no faster than it is processed); a live stream
instead calls :meth:`FrameQueue.drop_all` when :meth:`FrameQueue.full_for` says the next
frame does not fit. One item is always let in, however large, so nothing can wait for ever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameQueue(Generic[T]):
    """At most ``max_items`` items and ``max_bytes`` bytes (by the sizes given to
    :meth:`put`), except that an empty queue takes any one item."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._changed = asyncio.Condition()

    def qsize(self) -> int:
        """Items held."""
        return len(self._items)

    @property
    def bytes(self) -> int:
        """Bytes held (the sum of the sizes given to :meth:`put`)."""
        return self._bytes

    def full_for(self, size: int) -> bool:
        """Whether an item of ``size`` bytes would have to wait."""
        if not self._items:
            return False
        return len(self._items) >= self.max_items or self._bytes + size > self.max_bytes

    async def put(self, item: T, size: int = 0) -> None:
        """Append ``item`` (``size`` bytes), waiting until it fits."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self.full_for(size))
            self._items.append((item, size))
            self._bytes += size
            self._changed.notify_all()

    async def get(self) -> T:
        """Remove and return the oldest item, waiting for one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item, size = self._items.popleft()
            self._bytes -= size
            self._changed.notify_all()
            return item

    async def drop_all(self) -> int:
        """Empty the queue; the number of items dropped."""
        async with self._changed:
            dropped = len(self._items)
            self._items.clear()
            self._bytes = 0
            self._changed.notify_all()
            return dropped
