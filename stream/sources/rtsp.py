"""RTSP cameras as a :class:`~stream.sources.base.Source`: PyAV over TCP, with timeouts and
reconnects.

Each connection runs on its own thread (open, demux, decode, convert to RGB), handing frames
to the event loop through a small bounded queue. A connection that fails to open, ends, or
sends nothing for ``read_timeout`` seconds (a hung camera) is dropped and opened again after
an exponential backoff with jitter, capped at ``max_backoff``. Every change is reported as a
:class:`~stream.events.StreamStatus`: ``connected``, ``disconnected``, ``error`` (an attempt
failed), ``reconnecting`` (with the delay) and ``ended`` (after :meth:`RtspSource.close`).

Presentation times stay increasing across reconnects: the first connection keeps the
camera's own times; a later one continues from the last frame plus the wall-clock time the
stream was away, so the gap is visible downstream (the 25 fps clock breaks its window there)
instead of being stretched over. Passwords in URLs never appear in status events.

With ``give_up_after``, a camera that stays unreachable that long (from the start, or since
it was last connected) ends the source with an ``error`` status that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import av
import numpy as np

from engines.method import FRAME_PERIOD
from errors import LipForensicsError
from stream.backoff import backoff_delays
from stream.events import Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.hwaccel import hwaccel_failure, hwaccel_options
from stream.sources.urls import RTSP_SCHEMES, redact, split_url
from stream.sources.video_file import upright_rgb

#: values of FFmpeg's ``rtsp_transport`` we accept.
TRANSPORTS = ("tcp", "udp", "udp_multicast", "http")
#: the first reconnect delay, seconds; doubles up to ``max_backoff``.
FIRST_BACKOFF = 0.5
#: frames buffered between the decoding thread and the event loop.
QUEUE_FRAMES = 4
#: extra seconds the event loop waits beyond FFmpeg's own timeouts before giving up on a thread.
WATCHDOG_MARGIN = 2.0


class Timeline:
    """Maps each connection's own presentation times onto one increasing timeline."""

    def __init__(self) -> None:
        self._offset: float | None = 0.0
        self._last: float | None = None
        self._last_arrival = 0.0
        self.interval = FRAME_PERIOD  # until the camera says its rate

    def new_connection(self) -> None:
        """The next frame starts a new connection (its clock may start anywhere)."""
        if self._last is not None:
            self._offset = None

    def map(self, pts: float | None, arrival: float) -> float:
        """The timeline position of a frame with connection time ``pts`` (``None``: unknown,
        one interval after the previous frame) that arrived at ``arrival`` (monotonic)."""
        if self._last is None:
            pts = 0.0 if pts is None else pts
        elif pts is None:
            pts = self._last + self.interval - (self._offset or 0.0)
        if self._offset is None:  # first frame after a reconnect: continue after the gap
            gap = max(self.interval, arrival - self._last_arrival)
            self._offset = self._last + gap - pts
        mapped = pts + self._offset
        if self._last is not None and mapped <= self._last:  # clock went back: re-anchor
            self._offset += self._last + self.interval - mapped
            mapped = self._last + self.interval
        self._last, self._last_arrival = mapped, arrival
        return mapped


@dataclass(frozen=True, slots=True)
class _Opened:
    """The connection is up."""

    width: int
    height: int
    interval: float


@dataclass(frozen=True, slots=True)
class _Closed:
    """The connection is over; ``reason`` says why in one line."""

    reason: str


class _Connection(threading.Thread):
    """One RTSP connection on its own thread: open, demux, decode, hand frames to the loop.

    Puts one :class:`_Opened`, then ``(pts, arrival, rgb)`` tuples, then one :class:`_Closed`.
    A packet the decoder rejects (corrupt data) is skipped and counted, not fatal.
    """

    def __init__(
        self,
        url: str,
        options: dict[str, str],
        timeouts: tuple[float, float],
        loop: asyncio.AbstractEventLoop,
        hwaccel: str | None = None,
    ) -> None:
        super().__init__(name=f"rtsp {redact(url)}", daemon=True)
        self.url, self.options, self.timeouts, self.loop = url, options, timeouts, loop
        self.hwaccel = hwaccel
        self.queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_FRAMES)
        self.stopping = threading.Event()
        self.corrupt_packets = 0

    def run(self) -> None:
        opened = False
        reason = "the stream ended"
        started = time.monotonic()
        try:
            decoding = hwaccel_options(self.hwaccel)
            container = av.open(self.url, options=self.options, timeout=self.timeouts, **decoding)
        except (av.FFmpegError, OSError) as error:
            reason = _reason(error, self.timeouts[0])
            if self.hwaccel is not None:
                reason = hwaccel_failure(self.hwaccel, error)
            if time.monotonic() - started >= self.timeouts[0]:  # FFmpeg's open was interrupted
                reason = f"no answer within {self.timeouts[0]:g} s (timeout)"
            self._put(_Closed(f"cannot connect: {reason}"))
            return
        try:
            if not container.streams.video:
                self._put(_Closed("the stream has no video"))
                return
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            interval = float(1 / rate) if rate else FRAME_PERIOD  # no rate: assume 25 fps
            ctx = stream.codec_context
            opened = self._put(_Opened(ctx.width, ctx.height, interval))
            for packet in container.demux(stream):
                if not opened or self.stopping.is_set():
                    return
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1
                    continue
                for frame in decoded:
                    rgb = upright_rgb(frame)
                    if not self._put((frame.time, time.monotonic(), rgb)):
                        return
        except (av.FFmpegError, OSError) as error:
            reason = f"connection lost: {_reason(error, self.timeouts[1])}"
        finally:
            container.close()
        self._put(_Closed(reason))

    def _put(self, item: object) -> bool:
        """Hand ``item`` to the event loop, waiting while the queue is full; ``False`` when
        the connection is being stopped or the loop is gone."""
        putting = self.queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(putting, self.loop)
        except RuntimeError:  # the event loop is closed
            putting.close()
            return False
        while not self.stopping.is_set():
            try:
                future.result(timeout=0.2)
                return True
            except TimeoutError:
                continue
        future.cancel()
        return False


class RtspSource:
    """A live RTSP camera (``rtsp://`` or ``rtsps://``); see the module doc.

    Args:
        url: the camera's address, credentials included if it needs them.
        stream_id: the stream's name in events (default: host and path of the URL).
        open_timeout: seconds to connect and read the stream description.
        read_timeout: seconds without data after which the connection counts as dead.
        transport: FFmpeg's ``rtsp_transport``: ``tcp`` (default), ``udp``, ...
        max_backoff: the longest wait between reconnect attempts, seconds.
        give_up_after: seconds without a connection after which the source ends with an
            ``error`` status (None: retry for ever).
        hwaccel: decode on this device (:mod:`stream.sources.hwaccel`; None: software).

    Raises:
        LipForensicsError: a URL that is not RTSP or an unknown transport.
    """

    live = True

    def __init__(
        self,
        url: str,
        stream_id: str | None = None,
        *,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        transport: str = "tcp",
        max_backoff: float = 10.0,
        give_up_after: float | None = None,
        hwaccel: str | None = None,
    ) -> None:
        parts = split_url(url)
        if parts.scheme.lower() not in RTSP_SCHEMES or not parts.hostname:
            raise LipForensicsError(f"not an RTSP address: {redact(url)!r} (rtsp://HOST/PATH)")
        if transport not in TRANSPORTS:
            raise LipForensicsError(
                f"unknown RTSP transport {transport!r}: expected one of {', '.join(TRANSPORTS)}"
            )
        self.url = parts.scheme.lower() + url[len(parts.scheme) :]  # FFmpeg knows "rtsp" only
        self.stream_id = stream_id or f"{parts.hostname}{parts.path or ''}"
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.max_backoff = max_backoff
        self.give_up_after = give_up_after
        self.hwaccel = hwaccel
        self.reconnects = 0
        self._options = {
            "rtsp_transport": transport,
            "timeout": str(int(read_timeout * 1_000_000)),  # socket I/O, microseconds
        }
        self._closed = asyncio.Event()
        self._connection: _Connection | None = None

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """Frames from the camera, across reconnects, until :meth:`close`; every connection
        change goes to ``on_status``."""

        def status(state: Connection, detail: str) -> None:
            on_status(StreamStatus(self.stream_id, state, detail))

        timeline = Timeline()
        delays = backoff_delays(FIRST_BACKOFF, self.max_backoff)
        attempt = 0
        ever_connected = False
        down_since, reason = time.monotonic(), ""
        try:
            while not self._closed.is_set():
                attempt += 1
                opened = False
                async for item in self._connect():
                    if isinstance(item, _Opened):
                        opened = True
                        timeline.interval = item.interval
                        timeline.new_connection()
                        detail = f"{redact(self.url)} {item.width}x{item.height}"
                        if ever_connected:
                            self.reconnects += 1
                            detail += " (reconnected)"
                        if attempt > 1:
                            detail += f", after {attempt - 1} failed attempt(s)"
                        ever_connected = True
                        status(Connection.CONNECTED, detail)
                        attempt, delays = 0, backoff_delays(FIRST_BACKOFF, self.max_backoff)
                    elif isinstance(item, _Closed):
                        status(Connection.DISCONNECTED if opened else Connection.ERROR, item.reason)
                        reason = item.reason
                        if opened:
                            down_since = time.monotonic()
                    else:
                        pts, arrival, rgb = item
                        yield Frame(self.stream_id, timeline.map(pts, arrival), rgb, arrival)
                if self._closed.is_set():
                    break
                away = time.monotonic() - down_since
                delay = next(delays)
                if self.give_up_after is not None:
                    if away >= self.give_up_after:
                        status(
                            Connection.ERROR,
                            f"gave up after {away:.1f} s without a connection: {reason}",
                        )
                        break
                    delay = min(delay, self.give_up_after - away)  # one last try at the limit
                status(Connection.RECONNECTING, f"attempt {attempt + 1} in {delay:.1f} s")
                await self._sleep(delay)
        finally:
            self._stop_connection()
            status(Connection.ENDED, redact(self.url))

    async def _connect(
        self,
    ) -> AsyncIterator[_Opened | _Closed | tuple[float | None, float, np.ndarray]]:
        """Run one connection; yields its items, always ending with a :class:`_Closed`."""
        connection = _Connection(
            self.url,
            self._options,
            (self.open_timeout, self.read_timeout),
            asyncio.get_running_loop(),
            self.hwaccel,
        )
        self._connection = connection
        connection.start()
        wait = self.open_timeout + self.read_timeout + WATCHDOG_MARGIN
        try:
            while True:
                item = await self._next(connection.queue, wait)
                if item is None:  # closed, or the thread is stuck past FFmpeg's timeouts
                    if not self._closed.is_set():
                        yield _Closed(f"no answer for {wait:.0f} s (watchdog timeout)")
                    return
                yield item
                if isinstance(item, _Closed):
                    return
                wait = self.read_timeout + WATCHDOG_MARGIN
        finally:
            self._stop_connection()

    async def _next(self, queue: asyncio.Queue[object], timeout: float) -> object | None:
        """The next item of ``queue``, or ``None`` after ``timeout`` s or on :meth:`close`."""
        getter = asyncio.ensure_future(queue.get())
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                (getter, closer), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closer.cancel()
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the source is closed meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def _stop_connection(self) -> None:
        """Tell the current connection's thread to stop (it exits at its next frame or
        timeout, on its own)."""
        if self._connection is not None:
            self._connection.stopping.set()
            self._connection = None

    async def close(self) -> None:
        """Stop reading and drop the connection; the frame iterator then ends. Idempotent."""
        self._closed.set()
        self._stop_connection()


def _reason(error: Exception, timeout: float) -> str:
    """One line for an FFmpeg error; an interrupted read is the read timeout firing."""
    if isinstance(error, av.ExitError | TimeoutError):
        return f"no data for {timeout:g} s (timeout)"
    if isinstance(error, av.FFmpegError | OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
