"""A received WebRTC video track (aiortc) as a :class:`~stream.sources.base.Source`.

aiortc decodes the track on its own thread and hands over ``av.VideoFrame`` objects whose
times start at 0 with the first frame (in the publisher's RTP clock), so the source's own
time is "seconds since the publisher's first frame". The conversion to RGB runs off the
event loop. The iterator ends when the track ends (the peer connection closed, the
publisher left) or on :meth:`WebRtcSource.close`; it then reports ``ended``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiortc.mediastreams import MediaStreamTrack
from av import VideoFrame

from engines.method import FRAME_PERIOD
from stream.events import Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import upright_rgb


class WebRtcSource:
    """One published video track; see the module doc.

    Args:
        track: a received aiortc video track (``RTCPeerConnection`` ``track`` event).
        stream_id: the stream's name in events.
    """

    live = True

    def __init__(
        self,
        track: MediaStreamTrack,
        stream_id: str,
    ) -> None:
        if track.kind != "video":
            raise ValueError(f"expected a video track, got {track.kind!r}")
        self.stream_id = stream_id
        self.frames_received = 0
        self._track = track
        self._closed = asyncio.Event()

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """The track's frames as RGB, until the track ends (then an ``ended`` status)."""
        last_pts = -FRAME_PERIOD  # a frame without a timestamp comes one period later
        try:
            while (frame := await self._next()) is not None:
                arrival = time.monotonic()
                pts = frame.time if frame.time is not None else last_pts + FRAME_PERIOD
                if pts <= last_pts:  # a late or repeated frame: keep time going forward
                    continue
                last_pts = pts
                rgb = await asyncio.to_thread(upright_rgb, frame)
                self.frames_received += 1
                yield Frame(self.stream_id, pts, rgb, arrival)
        finally:
            detail = f"{self.frames_received} frames received"
            on_status(StreamStatus(self.stream_id, Connection.ENDED, detail))

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
        """Stop the track; the frame iterator then ends. Idempotent."""
        self._closed.set()
        self._track.stop()
