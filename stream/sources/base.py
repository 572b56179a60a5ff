"""Where frames come from: a :class:`Source` is an async iterator of :class:`Frame` records.

Every source has a ``stream_id``, yields frames with the source's own presentation time,
reports connection changes through the ``on_status`` callback it was built with, and is
closed with ``await source.close()``. ``live`` says whether the source runs at its own pace
(a camera, a call: the pipeline drops the oldest frames when it falls behind) or waits for
the pipeline (a file read as fast as possible: nothing is dropped).

:func:`open_source` turns a command-line address into a source: a file path (or
``file://``), or ``rtsp://`` / ``rtsps://`` (handled by :mod:`stream.sources.rtsp`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from engines.errors import LipForensicsError
from stream.records import Frame, StatusEvent
from stream.sources.urls import split_url
from stream.sources.video_file import VideoFile

StatusCallback = Callable[[StatusEvent], None]

#: schemes served by :class:`stream.sources.rtsp.RtspSource`.
RTSP_SCHEMES = ("rtsp", "rtsps")


@runtime_checkable
class Source(Protocol):
    """A stream of frames (see the module doc)."""

    stream_id: str
    live: bool

    def frames(self) -> AsyncIterator[Frame]:
        """The frames in presentation order; ends when the source ends for good."""
        ...

    async def close(self) -> None:
        """Stop reading and release the connection or file; safe to call twice."""
        ...


def _ignore_status(event: StatusEvent) -> None:
    """The default ``on_status``: nobody is listening."""


class FileSource:
    """A video file decoded with PyAV, as fast as the pipeline takes it or at real-time pace.

    Bad files fail at construction with a one-line :class:`~engines.errors.MediaError`.
    With ``realtime=True`` frame *n* is handed over no earlier than its pts after the first
    frame, like a camera; the source is then ``live``.
    """

    def __init__(
        self,
        path: str | Path,
        stream_id: str | None = None,
        *,
        on_status: StatusCallback = _ignore_status,
        realtime: bool = False,
    ) -> None:
        self.path = Path(path)
        self.stream_id = stream_id or self.path.stem
        self.live = realtime
        self._on_status = on_status
        self._video = VideoFile(self.path)
        self._closed = False
        self._reading = False

    async def frames(self) -> AsyncIterator[Frame]:
        """Decode in a worker thread, one frame at a time; pace them when ``live``."""
        self._on_status(StatusEvent(self.stream_id, "connected", str(self.path)))
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
            problem = self._video.problem
            status = "error" if problem else "ended"
            self._on_status(StatusEvent(self.stream_id, status, problem or str(self.path)))

    async def close(self) -> None:
        """Stop after the current frame; the file is released when reading stops."""
        self._closed = True
        if not self._reading:
            self._video.close()


def open_source(
    uri: str,
    stream_id: str | None = None,
    *,
    on_status: StatusCallback = _ignore_status,
    realtime: bool = False,
    give_up_after: float | None = None,
) -> Source:
    """The source for a command-line address: a video file path, ``file://PATH``,
    ``rtsp://`` or ``rtsps://``. ``realtime`` paces files like a camera; a camera unreachable for
    ``give_up_after`` seconds ends (None: it is retried for ever).

    Raises:
        LipForensicsError: an unknown scheme, or a file that cannot be read as a video.
    """
    scheme = split_url(uri).scheme.lower() if "://" in uri else ""
    if scheme in RTSP_SCHEMES:
        from stream.sources.rtsp import RtspSource

        return RtspSource(uri, stream_id, on_status=on_status, give_up_after=give_up_after)
    if scheme == "file":
        return FileSource(uri[len("file://") :], stream_id, on_status=on_status, realtime=realtime)
    if scheme:
        raise LipForensicsError(
            f"unsupported source {uri!r}: expected a video file path, file://, rtsp:// or rtsps://"
        )
    return FileSource(uri, stream_id, on_status=on_status, realtime=realtime)
