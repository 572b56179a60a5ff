"""Video files as a :class:`~stream.sources.base.Source`: decoded with PyAV, as fast as the
pipeline takes them or at real-time pace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from stream.events import Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import VideoFile


class FileSource:
    """A video file decoded with PyAV, as fast as the pipeline takes it or at real-time pace.

    Bad files fail at construction with a one-line :class:`~errors.MediaError`.
    With ``realtime=True`` frame *n* is handed over no earlier than its pts after the first
    frame, like a camera; the source is then ``live``.
    """

    def __init__(
        self,
        path: str | Path,
        stream_id: str | None = None,
        *,
        realtime: bool = False,
        hwaccel: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.stream_id = stream_id or self.path.stem
        self.live = realtime
        self._video = VideoFile(self.path, hwaccel)
        self._closed = False
        self._reading = False

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """Decode in a worker thread, one frame at a time; pace them when ``live``."""
        on_status(StreamStatus(self.stream_id, Connection.CONNECTED, str(self.path)))
        self._reading = True
        decoded = self._video.frames()
        loop = asyncio.get_running_loop()
        step: asyncio.Future | None = None
        start_wall: float | None = None
        start_pts = 0.0
        try:
            while not self._closed:
                step = loop.run_in_executor(None, next, decoded, None)
                item = await asyncio.shield(step)
                if item is None:
                    break
                pts, rgb = item
                if self.live:
                    if start_wall is None:
                        start_wall, start_pts = time.monotonic(), pts
                    delay = start_wall + (pts - start_pts) - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield Frame(self.stream_id, pts, rgb)
        finally:
            if step is not None:  # cancelled while decoding: let that frame finish first
                await asyncio.wait([step])
            decoded.close()
            self._reading = False
            self._video.close()
            if self._video.problem:
                on_status(StreamStatus(self.stream_id, Connection.ERROR, self._video.problem))
            on_status(StreamStatus(self.stream_id, Connection.ENDED, str(self.path)))

    async def close(self) -> None:
        """Stop after the current frame; the file is released when reading stops."""
        self._closed = True
        if not self._reading:
            self._video.close()
