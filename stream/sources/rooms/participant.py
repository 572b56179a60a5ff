"""One participant of a call room as a :class:`~stream.sources.base.Source`.

The room (:mod:`stream.sources.rooms.janus_room`) hands the participant's video over as it
comes: :meth:`Participant.watch` a received aiortc track, :meth:`Participant.without_video`
when there is none to watch (the camera is off, a codec we cannot decode), and
:meth:`Participant.close` when the participant leaves. Nothing goes silent: every change is
a status of the participant's stream, and so is a camera that stops sending frames for
:data:`CAMERA_OFF_AFTER` seconds (``connected``, "camera off": a state, not a fault) and
its return. When frames stop but RTP packets still arrive (the receiver's last packet is
younger than half of :data:`CAMERA_OFF_AFTER`), the media cannot be decoded (end-to-end
encrypted, insertable streams or SFrame, or a broken encoder): an ``error`` status of its
own, :data:`UNDECODABLE`, until frames decode again or the packets stop too (then "camera
off"). Every status detail starts with who the participant is (room, display name, id in
the room).

Presentation times are the track's (seconds since its first frame); a later track goes on
one second after the last frame of the previous one, so that times never go back.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import AsyncIterator
from contextlib import suppress

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from engines.method import FRAME_PERIOD
from stream.events import CallParticipant, Connection, Frame, StreamStatus
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import upright_rgb

#: seconds without a frame after which a participant's camera counts as off.
CAMERA_OFF_AFTER = 2.0
#: what an ``error`` status says of video whose packets arrive but whose frames do not decode
UNDECODABLE = (
    "video arrives but cannot be decoded (RTP packets, no frame for {seconds:g} s): "
    "end-to-end encrypted, or a broken encoder; not scored"
)
#: seconds between two of aiortc's "failed to decode" warnings that get through
DECODE_WARNING_EVERY = 60.0
#: the gap, in the stream's time, between the last frame of one track and the next track.
TRACK_GAP = 1.0


class _DecodeFailures(logging.Filter):
    """Lets aiortc's "failed to decode" warnings through once in
    :data:`DECODE_WARNING_EVERY` seconds: video that never decodes would log one per frame,
    and its stream's status says so already."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if "failed to decode" not in record.getMessage():
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + DECODE_WARNING_EVERY
        return True


_DECODE_FAILURES = _DecodeFailures()


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
        #: whether its video arrives but does not decode now (:data:`UNDECODABLE`)
        self.undecodable = False
        self._track: MediaStreamTrack | None = None
        self._receiver: RTCRtpReceiver | None = None
        #: why there is no track to watch, and whether that is an error (None: said)
        self._no_video: tuple[str, bool] | None = None
        self._ended: str | None = None
        self._changed = asyncio.Event()

    def watch(self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None = None) -> None:
        """Read ``track`` (a received video track) from now on; ``receiver``, the track's
        RTP receiver, tells a camera that is off from video that does not decode (None:
        every silence is a camera that is off)."""
        self._track, self._receiver, self.held_back = track, receiver, None
        logging.getLogger("aiortc.rtcrtpreceiver").addFilter(_DECODE_FAILURES)  # once only
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
        silence: str | None = None  # what the last status said of frames that stopped
        try:
            while self._ended is None:
                if track is None or self._track is not track:  # a new track, or none
                    if receiving is not None:
                        receiving.cancel()
                    track, receiving, silence = self._track, None, None
                    self.undecodable = False
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
                    if outcome == "timeout":
                        undecodable, said = self._silence()
                        if said != silence:
                            silence, self.undecodable = said, undecodable
                            status(
                                Connection.ERROR if self.undecodable else Connection.CONNECTED, said
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
                if silence is not None or self.frames_received == 0:
                    back = "video back" if silence is not None else "receiving video"
                    status(Connection.CONNECTED, f"{back}, {frame.width}x{frame.height}")
                    silence, self.undecodable = None, False
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

    def _silence(self) -> tuple[bool, str]:
        """Whether a track without frames for :attr:`camera_off_after` seconds cannot be
        decoded (its receiver still gets RTP packets, the last one younger than half that
        time; otherwise its camera is off), and what its status says."""
        seconds = self.camera_off_after
        sources = [] if self._receiver is None else self._receiver.getSynchronizationSources()
        if sources:
            now = datetime.datetime.now(datetime.UTC)
            age = min((now - source.timestamp).total_seconds() for source in sources)
            if age < seconds / 2:
                return True, UNDECODABLE.format(seconds=seconds)
        return False, f"camera off (no video for {seconds:g} s)"

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
