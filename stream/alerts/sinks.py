"""Where events go: JSON lines (stdout or a file), a webhook (through the durable outbox)
and an MQTT broker (:mod:`stream.alerts.mqtt`).

Every sink takes event records (:data:`stream.events.Event`) through :meth:`Sink.send`,
which never blocks the event loop, writes their JSON form (``to_dict()``), and is flushed
and closed with ``await sink.close()``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Protocol

import aiohttp

from errors import LipForensicsError
from stream.alerts.outbox import DELIVERED, REJECTED, Outbox
from stream.backoff import backoff_delays
from stream.events import Alert, Event


class Sink(Protocol):
    """A destination for events."""

    def send(self, event: Event) -> None:
        """Take one event; must not block."""
        ...

    async def close(self) -> None:
        """Deliver what is pending (as far as possible) and release resources."""
        ...


class JsonlSink:
    """One JSON object per line, flushed per line; ``path`` "-" means standard output.

    A failed write (a closed pipe, a full disk) is not raised: the sink stops writing, keeps
    the error in :attr:`error` and calls :attr:`on_failure` once with it, so that its owner
    can stop (the pipeline goes on meanwhile, its other sinks too).
    """

    def __init__(self, path: str | Path = "-") -> None:
        self.path = str(path)
        self.error: OSError | None = None
        self.on_failure: Callable[[OSError], None] | None = None
        self._owned = self.path != "-"
        try:
            self._out: IO[str] = open(path, "a", encoding="utf-8") if self._owned else sys.stdout  # noqa: SIM115
        except OSError as error:
            raise LipForensicsError(f"cannot write events to {path}: {error.strerror}") from None

    def send(self, event: Event) -> None:
        """Write the event as one line (nothing once a write has failed)."""
        if self.error is not None:
            return
        try:
            self._out.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
            self._out.flush()
        except OSError as error:
            self.error = error
            if self.on_failure is not None:
                self.on_failure(error)

    async def close(self) -> None:
        """Close the file (standard output stays open)."""
        if self._owned:
            with suppress(OSError):  # what a failed write left in the buffer fails again
                self._out.close()


class WebhookSink:
    """POST the JSON form of each event of the chosen ``kinds`` (record types) to ``url``, in
    order, from a bounded queue (the oldest event is dropped and counted when it is full).

    A failed delivery (connection error, timeout, HTTP 5xx or 429, or a redirect: 3xx
    answers are not followed, so an alert never goes to an address the user did not give)
    is retried with exponential backoff and jitter, ``attempts`` times in all; other 4xx
    answers are final.

    With an ``outbox``, events go to that file first and are retried (same backoff) until a
    2xx or a final 4xx, however long the receiver is away; ``close`` leaves what is still
    pending in the file, and the next sink on the same file sends it first.

    Attributes:
        delivered, failed, dropped: event counts.
        left_pending: events still pending in the outbox when it was closed.
    """

    def __init__(
        self,
        url: str,
        *,
        kinds: tuple[type[Event], ...] = (Alert,),
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        queue_size: int = 1000,
        outbox: Outbox | None = None,
    ) -> None:
        self.url = url
        self.kinds = kinds
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.delivered = self.failed = self.dropped = self.left_pending = 0
        self._queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._outbox = outbox
        self._wake = asyncio.Event()
        if outbox is not None and outbox.pending:
            self._start()  # events left by an earlier process go first

    def send(self, event: Event) -> None:
        """Queue the event's JSON form for delivery if its kind is wanted."""
        if not isinstance(event, self.kinds):
            return
        self._start()
        data = event.to_dict()
        if self._outbox is not None:
            self._outbox.add(data)
            self.dropped = self._outbox.dropped
            self._wake.set()
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        self._queue.put_nowait(data)

    async def close(self, grace: float = 5.0) -> None:
        """Wait up to ``grace`` seconds for pending deliveries, then stop."""
        if self._worker is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), grace)
            self._worker.cancel()
            with suppress(asyncio.CancelledError):
                await self._worker
        if self._outbox is not None:
            self.left_pending = self._outbox.pending
            self._outbox.close()

    @property
    def outbox_path(self) -> Path | None:
        """The outbox file, if the sink has one."""
        return self._outbox.path if self._outbox is not None else None

    def _start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._deliver_all())

    async def _drained(self) -> None:
        """Return once nothing is pending."""
        if self._outbox is None:
            await self._queue.join()
            return
        while self._outbox.pending:
            await asyncio.sleep(0.05)

    async def _deliver_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while self._outbox is not None:
                await self._deliver_next(session, self._outbox)
            while True:
                event = await self._queue.get()
                try:
                    if await self._deliver(session, event):
                        self.delivered += 1
                    else:
                        self.failed += 1
                finally:
                    self._queue.task_done()

    async def _deliver_next(self, session: aiohttp.ClientSession, outbox: Outbox) -> None:
        """Send the oldest pending event of the outbox until it is taken or refused."""
        item = outbox.next_pending()
        if item is None:
            self._wake.clear()
            await self._wake.wait()
            return
        seq, event = item
        delays = backoff_delays(self.backoff, self.max_backoff)
        while (taken := await self._post(session, event)) is None:
            await asyncio.sleep(next(delays))
        outbox.mark(seq, DELIVERED if taken else REJECTED)
        if taken:
            self.delivered += 1
        else:
            self.failed += 1

    async def _deliver(self, session: aiohttp.ClientSession, event: dict[str, object]) -> bool:
        """POST one event, retrying transient failures; True when the receiver took it."""
        delays = backoff_delays(self.backoff, self.max_backoff)
        for attempt in range(self.attempts):
            taken = await self._post(session, event)
            if taken is not None:
                return taken
            if attempt + 1 < self.attempts:
                await asyncio.sleep(next(delays))
        return False

    async def _post(self, session: aiohttp.ClientSession, event: dict[str, object]) -> bool | None:
        """POST once: True on a 2xx, False on a final 4xx, None when worth retrying (a 3xx
        included: the redirect is not followed, and the event stays undelivered)."""
        try:
            async with session.post(self.url, json=event, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return True
                if 400 <= response.status < 500 and response.status != 429:
                    return False
        except (aiohttp.ClientError, TimeoutError):
            pass
        return None
