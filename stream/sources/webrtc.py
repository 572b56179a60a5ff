"""A received WebRTC video track (aiortc) as a :class:`~stream.sources.base.Source`.

aiortc decodes the track on its own thread and hands over ``av.VideoFrame`` objects whose
times start at 0 with the first frame (in the publisher's RTP clock), so the source's own
time is "seconds since the publisher's first frame". The conversion to RGB runs off the
event loop. The iterator ends when the track ends (the peer connection closed, the
publisher left) or on :meth:`WebRtcSource.close`; it then reports ``ended``.

Once its owner says the publisher should be sending (:meth:`WebRtcSource.watch`: a WHIP
session that connected), the source watches the picture: no frame, or only the same
picture again (:mod:`stream.sources.motion`: a frozen tab resends its last one), for
``stall_timeout`` seconds is ``stalled``; the frozen frames are then not handed on (there is
nothing in them to score), and the first picture that moves again is ``connected``. A
participant whose camera is off, in a call, is not watched: it is not stalled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from av import VideoFrame

from engines.method import FRAME_PERIOD
from stream.events import Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.motion import PictureChange
from stream.sources.video_file import upright_rgb

#: seconds without a new picture, by default, before a watched source is stalled.
STALL_TIMEOUT = 5.0


class WebRtcSource:
    """One published video track; see the module doc.

    Args:
        track: a received aiortc video track (``RTCPeerConnection`` ``track`` event).
        stream_id: the stream's name in events.
        stall_timeout: seconds without a new picture, once watched, before ``stalled``.
    """

    live = True

    def __init__(
        self, track: MediaStreamTrack, stream_id: str, *, stall_timeout: float = STALL_TIMEOUT
    ) -> None:
        if track.kind != "video":
            raise ValueError(f"expected a video track, got {track.kind!r}")
        self.stream_id = stream_id
        self.stall_timeout = stall_timeout
        self.frames_received = 0
        self._track = track
        self._closed = asyncio.Event()
        self._watched = asyncio.Event()
        self._watchdog: asyncio.Future[None] | None = None
        self._picture = PictureChange()
        #: ``time.monotonic()`` of the last picture that moved (or of :meth:`watch`)
        self._last_moved = time.monotonic()
        self._stalled = False

    def watch(self) -> None:
        """The publisher should be sending from now on: a pause of ``stall_timeout``
        seconds without a new picture is a stall. Idempotent."""
        if not self._watched.is_set():
            self._last_moved = time.monotonic()
            self._watched.set()

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """The track's frames as RGB, until the track ends (then an ``ended`` status)."""
        last_pts = -FRAME_PERIOD  # a frame without a timestamp comes one period later
        self._watchdog = asyncio.ensure_future(self._watch(on_status))
        try:
            while (frame := await self._next()) is not None:
                arrival = time.monotonic()
                pts = frame.time if frame.time is not None else last_pts + FRAME_PERIOD
                if pts <= last_pts:  # a late or repeated frame: keep time going forward
                    continue
                last_pts = pts
                rgb, moved = await asyncio.to_thread(self._look, frame)
                if moved:
                    self._moved(arrival, on_status)
                elif self._stalled:
                    continue  # a frozen picture: nothing to score
                self.frames_received += 1
                yield Frame(self.stream_id, pts, rgb, arrival)
        finally:
            self._watchdog.cancel()
            detail = f"{self.frames_received} frames received"
            on_status(StreamStatus(self.stream_id, Connection.ENDED, detail))

    def _look(self, frame: VideoFrame) -> tuple[np.ndarray, bool]:
        """The frame as upright RGB, and whether its picture moved (on a worker thread)."""
        rgb = upright_rgb(frame)
        return rgb, self._picture.moved(rgb)

    def _moved(self, now: float, on_status: StatusCallback) -> None:
        """A new picture: the watch starts over; a stalled stream is connected again."""
        if self._stalled:
            self._stalled = False
            still = now - self._last_moved
            detail = f"the picture moves again after {still:.1f} s"
            on_status(StreamStatus(self.stream_id, Connection.CONNECTED, detail))
        self._last_moved = now

    async def _watch(self, on_status: StatusCallback) -> None:
        """Once watched: ``stalled`` after ``stall_timeout`` s without a new picture."""
        await self._watched.wait()
        while True:
            still = time.monotonic() - self._last_moved
            if still >= self.stall_timeout and not self._stalled:
                self._stalled = True
                detail = (
                    f"no new picture for {self.stall_timeout:g} s "
                    "(the publisher is connected but sends no video, or a frozen one)"
                )
                on_status(StreamStatus(self.stream_id, Connection.STALLED, detail))
            await asyncio.sleep(
                self.stall_timeout - still if still < self.stall_timeout else self.stall_timeout
            )

    async def _next(self) -> VideoFrame | None:
        """The track's next frame; ``None`` once it ended or :meth:`close` was called (a
        track that never received anything does not end by itself when stopped)."""
        if self._closed.is_set():
            return None
        receiving = asyncio.ensure_future(self._track.recv())
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((receiving, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            receiving.cancel()
        if not receiving.done() or receiving.cancelled() or receiving.exception():
            return None
        return receiving.result()

    async def close(self) -> None:
        """Stop the track (and the watch); the frame iterator then ends. Idempotent."""
        self._closed.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._track.stop()
