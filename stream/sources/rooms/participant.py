"""One participant of a call room as a :class:`~stream.sources.base.Source`.

The room (:mod:`stream.sources.rooms.janus_room`) hands the participant's video over as it
comes: :meth:`Participant.watch` a received aiortc track, :meth:`Participant.without_video`
when there is none to watch (the camera is off, a codec we cannot decode), and
:meth:`Participant.close` when the participant leaves. Nothing goes silent: every change is
a status of the participant's stream, and so is a camera that stops sending frames for
:data:`CAMERA_OFF_AFTER` seconds (``connected``, "camera off": a state, not a fault) and
its return. Every status detail starts with who the participant is (room, display name,
id in the room).

Presentation times are the track's (seconds since its first frame); a later track goes on
one second after the last frame of the previous one, so that times never go back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from engines.method import FRAME_PERIOD
from stream.events import CallParticipant, Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import upright_rgb

#: seconds without a frame after which a participant's camera counts as off.
CAMERA_OFF_AFTER = 2.0
#: the gap, in the stream's time, between the last frame of one track and the next track.
TRACK_GAP = 1.0


class Participant:
    """A call participant's video (see the module doc).

    Args:
        stream_id: the stream's name in events (``ROOM/NAME``).
        who: the participant in words, at the start of every status detail.
        participant: who it is as a record (its worker puts it on every event).
        camera_off_after: seconds without a frame that make the camera count as off.
    """

    live = True

    def __init__(
        self,
        stream_id: str,
        who: str,
        participant: CallParticipant,
        camera_off_after: float = CAMERA_OFF_AFTER,
    ) -> None:
        self.stream_id, self.who, self.participant = stream_id, who, participant
        self.camera_off_after = camera_off_after
        self.frames_received = 0
        #: why the node does not score it now, while it waits for a stream slot (None:
        #: it is not waiting); its ``error`` status then is no failure of the stream
        self.held_back: str | None = None
        self._track: MediaStreamTrack | None = None
        #: why there is no track to watch, and whether that is an error (None: said)
        self._no_video: tuple[str, bool] | None = None
        self._ended: str | None = None
        self._changed = asyncio.Event()

    def watch(self, track: MediaStreamTrack) -> None:
        """Read ``track`` (a received video track) from now on."""
        self._track, self.held_back = track, None
        self._changed.set()

    def without_video(self, reason: str, *, error: bool = False) -> None:
        """There is no video to read: ``reason`` says why (an ``error`` status when it is
        one, e.g. a codec that cannot be decoded; otherwise ``connected``)."""
        self._track, self._no_video, self.held_back = None, (reason, error), None
        self._changed.set()

    def wait_for_slot(self, reason: str) -> None:
        """Not scored while the node is full (``reason``, e.g. "the node is full (it
        scores 16 stream(s) at most)"): an ``error`` status that says so, for the node
        needs attention, but no failure of this stream (:attr:`held_back`)."""
        self.without_video(f"not scored: {reason}; scored as soon as one ends", error=True)
        self.held_back = reason

    async def close(self, reason: str = "closed") -> None:
        """End the stream: the frame iterator ends, then ``ended`` with ``reason``."""
        if self._ended is None:
            self._ended = reason
        self._track = None
        self._changed.set()

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """The participant's frames, across tracks, until :meth:`close`."""

        def status(state: Connection, detail: str) -> None:
            on_status(StreamStatus(self.stream_id, state, f"{self.who}: {detail}"))

        offset: float | None = 0.0
        last_pts = -FRAME_PERIOD
        track: MediaStreamTrack | None = None
        receiving: asyncio.Future | None = None
        camera_off = False
        try:
            while self._ended is None:
                if track is None or self._track is not track:  # a new track, or none
                    if receiving is not None:
                        receiving.cancel()
                    track, receiving, camera_off = self._track, None, False
                    if track is None:
                        if self._no_video is not None:
                            reason, error = self._no_video
                            self._no_video = None  # said once
                            status(Connection.ERROR if error else Connection.CONNECTED, reason)
                        await self._wait(None)
                        continue
                    offset = None  # set at the track's first frame
                if receiving is None:
                    receiving = asyncio.ensure_future(track.recv())
                outcome = await self._wait(receiving)
                if outcome != "frame":
                    if outcome == "timeout" and not camera_off:
                        camera_off = True
                        status(
                            Connection.CONNECTED,
                            f"camera off (no video for {self.camera_off_after:g} s)",
                        )
                    continue
                try:
                    frame = receiving.result()
                except MediaStreamError:  # the track ended: wait for what the room says
                    if self._track is track:
                        self.without_video("video ended")
                    track = receiving = None
                    continue
                receiving = None
                arrival = time.monotonic()
                rgb = await asyncio.to_thread(upright_rgb, frame)
                seconds = frame.time if frame.time is not None else last_pts + FRAME_PERIOD
                if offset is None:
                    offset = max(last_pts + TRACK_GAP, 0.0) - seconds
                pts = seconds + offset
                if pts <= last_pts:  # a late or repeated frame: keep time going forward
                    continue
                if camera_off or self.frames_received == 0:
                    back = "video back" if camera_off else "receiving video"
                    status(Connection.CONNECTED, f"{back}, {frame.width}x{frame.height}")
                    camera_off = False
                last_pts = pts
                self.frames_received += 1
                yield Frame(self.stream_id, pts, rgb, arrival)
        finally:
            if receiving is not None:
                receiving.cancel()
                with suppress(asyncio.CancelledError, MediaStreamError):
                    await receiving
            detail = f"{self._ended or 'closed'}; {self.frames_received} frames received"
            on_status(StreamStatus(self.stream_id, Connection.ENDED, f"{self.who}: {detail}"))

    async def _wait(self, receiving: asyncio.Future | None) -> str:
        """Wait for ``receiving`` (a frame), a change (a new track, none, the end) or, while
        receiving, :attr:`camera_off_after` seconds: ``frame``, ``changed`` or
        ``timeout``."""
        changed = asyncio.ensure_future(self._changed.wait())
        waiting = {changed} if receiving is None else {changed, receiving}
        timeout = None if receiving is None else self.camera_off_after
        try:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if receiving is not None and receiving.done():
            return "frame"
        if self._changed.is_set():
            self._changed.clear()
            return "changed"
        return "timeout"
