"""Watch a Janus VideoRoom: join it as a participant that publishes nothing, subscribe to
every publisher's video, and run one stream per participant.

The watcher's own handle joins the room as a publisher that never publishes (the room's
other participants see nothing of it, unless the room has ``notify_joining``): it hears of
every publisher, those already there (``joined``) and those who come later
(``publishers`` events, long-polled: within a second), and of those who unpublish or
leave. Each publisher gets a :class:`~stream.sources.rooms.participant.Participant`
stream, ``ROOM/NAME`` (the display name made safe; ``-2``, ``-3``... when the node already
runs that name), added to the pipeline with ``add_source``; its video comes from a
subscriber handle of its own (one peer connection per feed), at the participant's own
resolution and frame rate, the top layer when it sends simulcast. A publisher without
video, with a codec aiortc cannot decode, or whose video arrives but does not decode
(end-to-end encrypted), gets its stream all the same, with a status that says so. A
participant's video is subscribed only while it holds one of the node's stream slots
(:class:`~stream.sources.slots.StreamSlots`): one that finds the node full has an
``error`` status saying so and waits in line, subscribed as soon as a slot is given back.
One who unpublishes or leaves ends its stream (its last verdicts, then ``ended``) and
gives its slot back. Every event of a participant's stream carries who it is
(:class:`~stream.events.CallParticipant`).

The room's own status (joined, lost, reconnecting) goes out as the status of the stream
named after the room. Janus going away (a restart, the session lost) or the room being
destroyed ends every participant's stream and the watcher joins again with the usual
backoff (:mod:`stream.backoff`), then resumes with whoever publishes then.

With ``announce=NAME`` in the address, the room also hears of its participants' alerts:
a data-only publisher of that name sends each as a JSON message (:mod:`.announcer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from stream.backoff import backoff_delays
from stream.events import Alert, CallParticipant, Connection, StreamStatus
from stream.sources.base import Source, StatusCallback
from stream.sources.rooms.announcer import Announcer
from stream.sources.rooms.janus_address import JanusAddress
from stream.sources.rooms.janus_api import JanusLost, JanusRefused, JanusSession
from stream.sources.rooms.participant import Participant
from stream.sources.slots import StreamSlots

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
#: video codecs aiortc decodes (as Janus names them)
DECODABLE = ("vp8", "h264")
#: the first reconnect delay, seconds; doubles up to ``max_backoff``.
FIRST_BACKOFF = 0.5
#: the longest part of a display name kept in a stream id
NAME_CHARS = 40


@dataclass(eq=False)
class _Feed:
    """One publisher of the room and what watches it."""

    id: int
    source: Participant
    mid: str | None = None  # the video stream subscribed to (None: none)
    handle: int = 0
    pc: RTCPeerConnection | None = None
    task: asyncio.Task[None] | None = None
    slot: bool = False  # holds one of the node's stream slots
    standing: str = "no video"  # where it stands (JanusRoom.participants)


class JanusRoom:
    """A VideoRoom watched as one stream per participant (see the module doc).

    Args:
        address: the room (:func:`~stream.sources.rooms.janus_address.parse_janus_url`).
        name: the room's name on this node: the prefix of its participants' stream ids and
            the stream id of its own status (default: the room's id).
        max_backoff: the longest wait between attempts to join, seconds.
    """

    def __init__(
        self, address: JanusAddress, name: str | None = None, *, max_backoff: float = 10.0
    ) -> None:
        self.address = address
        self.name = name or str(address.room)
        self.shown = str(address)
        self.announces = address.announce is not None
        self.max_backoff = max_backoff
        self.joins = 0
        self.state: StreamStatus | None = None
        self._feeds: dict[int, _Feed] = {}
        self._closed = asyncio.Event()
        self._add_source: Callable[[Source], object] = lambda source: None
        self._streams = StreamSlots(0)
        #: the publisher that tells the room of alerts (None: none, or not yet)
        self.announcer: Announcer | None = None
        self._own_feed = 0  # the announcer's feed id in the room (0: none)

    async def run(
        self,
        add_source: Callable[[Source], object],
        on_status: StatusCallback,
        streams: StreamSlots,
    ) -> None:
        """Watch the room until :meth:`close`: each participant's stream goes to
        ``add_source`` and is scored while it holds one of ``streams``; the room's own
        status goes to ``on_status``."""
        self._add_source, self._streams = add_source, streams

        def status(state: Connection, detail: str) -> None:
            self.state = StreamStatus(self.name, state, f"{self.address}: {detail}")
            on_status(self.state)

        delays = backoff_delays(FIRST_BACKOFF, self.max_backoff)
        attempt = 0
        async with aiohttp.ClientSession() as http:
            while not self._closed.is_set():
                attempt += 1
                try:
                    reason = await self._session(http, status)
                    attempt, delays = 0, backoff_delays(FIRST_BACKOFF, self.max_backoff)
                    if not self._closed.is_set():
                        status(Connection.DISCONNECTED, reason)
                except JanusLost as error:
                    status(
                        Connection.ERROR if attempt == 1 else Connection.DISCONNECTED, str(error)
                    )
                except JanusRefused as error:
                    status(Connection.ERROR, str(error))
                if self._closed.is_set():
                    break
                delay = next(delays)
                status(Connection.RECONNECTING, f"attempt {attempt + 1} in {delay:.1f} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), delay)
        status(Connection.ENDED, f"left the room after {self.joins} join(s)")

    async def close(self) -> None:
        """Leave the room: every participant's stream ends. Idempotent."""
        self._closed.set()

    def on_alert(self, alert: Alert) -> None:
        """Tell the room of ``alert`` when it is one of its participants' and the room
        announces alerts (``announce=``); otherwise nothing."""
        who = alert.verdict.participant
        if self.announcer is not None and who is not None and who.room == self.name:
            self.announcer.send(alert)

    async def _announce(self, session: JanusSession) -> str:
        """Publish the data channel that tells the room of alerts (``announce=``); what
        the room's status says of it. A refusal is said there, and the room is watched
        all the same."""
        name = str(self.address.announce)
        announcer = Announcer(session, self.address.room, name, self._pin())
        try:
            await announcer.start()
        except (JanusRefused, ValueError) as error:
            self._own_feed = announcer.id
            await announcer.close()
            log.warning("%s: cannot announce alerts as %r: %s", self.shown, name, error)
            return f"cannot announce alerts as {name!r}: {error}"
        except BaseException:  # the session lost, or the watcher cancelled
            await announcer.close()
            raise
        self.announcer, self._own_feed = announcer, announcer.id
        return f"announcing alerts as {name!r} (id {announcer.id}, a data channel only)"

    def participants(self) -> list[tuple[str, CallParticipant, str]]:
        """Each participant now: stream id, who, and ``scored``, ``waiting for a stream
        slot``, ``no video`` or ``cannot decode its video`` (its codec, or video that
        arrives but does not decode: end-to-end encrypted)."""
        return [
            (
                feed.source.stream_id,
                feed.source.participant,
                "cannot decode its video" if feed.source.undecodable else feed.standing,
            )
            for feed in self._feeds.values()
        ]

    async def _session(self, http: aiohttp.ClientSession, status: Callable) -> str:
        """Join the room on a new session and follow it until the session is lost, the
        room destroyed or :meth:`close`; why it ended."""
        address = self.address
        session = await JanusSession.create(
            http, address.api, secret=address.secret, token=address.token, shown=str(address)
        )
        reason = "the watcher's session failed"
        try:
            handle = await session.attach(VIDEOROOM)
            join = {"request": "join", "ptype": "publisher", "room": address.room}
            joined = await session.message(handle, {**join, **self._pin(), "display": address.name})
            self.joins += 1
            publishers = joined.data.get("publishers") or []
            watcher = f"joined as {address.name!r} (id {joined.data.get('id')}, publishing nothing)"
            if address.announce:
                watcher += f", {await self._announce(session)}"
            status(Connection.CONNECTED, f"{watcher}; {len(publishers)} publisher(s)")
            private_id = joined.data.get("private_id")
            for publisher in publishers:
                self._publisher(session, publisher, private_id)
            reason = await self._follow(session, handle, private_id)
        finally:
            await self._end_feeds(
                session, reason if self._closed.is_set() else f"watcher: {reason}"
            )
            if self.announcer is not None:
                announcer, self.announcer = self.announcer, None
                await announcer.close()
            await session.close()
        return reason

    async def _follow(self, session: JanusSession, handle: int, private_id: object) -> str:
        """Act on the room's events until it ends; why it ended."""
        closing = asyncio.ensure_future(self._closed.wait())
        events = aiter(session.events())
        try:
            while True:
                following = asyncio.ensure_future(anext(events, None))
                await asyncio.wait((following, closing), return_when=asyncio.FIRST_COMPLETED)
                if closing.done():
                    following.cancel()
                    return "the watcher stopped"
                event = following.result()
                if event is None:
                    return f"the watcher lost its session: {session.lost}"
                data = event.data
                if event.handle != handle:
                    continue  # a subscriber's webrtcup, media, hangup: the tracks say it
                if data.get("videoroom") == "destroyed":
                    return "the room was destroyed"
                for publisher in data.get("publishers") or []:
                    self._publisher(session, publisher, private_id)
                for key, what in (("unpublished", "unpublished"), ("leaving", "left the room")):
                    gone = data.get(key)
                    if gone == "ok" and key == "leaving":
                        return f"removed from the room ({data.get('reason', 'kicked')})"
                    if isinstance(gone, int) and gone in self._feeds:
                        await self._end_feed(session, self._feeds.pop(gone), what)
        finally:
            closing.cancel()

    def _publisher(self, session: JanusSession, publisher: dict, private_id: object) -> None:
        """A publisher, new or changed: its stream, and a subscription to its video."""
        feed_id = int(publisher["id"])
        if feed_id == self._own_feed:
            return  # the watcher's own announcer
        feed = self._feeds.get(feed_id)
        if feed is None:
            display = str(publisher.get("display") or "")
            feed = self._feeds[feed_id] = _Feed(feed_id, self._new_stream(display, feed_id))
        video = next(
            (
                stream
                for stream in publisher.get("streams") or []
                if stream.get("type") == "video" and not stream.get("disabled")
            ),
            None,
        )
        mid = None if video is None else str(video.get("mid"))
        if mid == feed.mid and feed.task is not None:
            return  # nothing changed for its video
        feed.mid = mid
        if feed.task is not None:
            feed.task.cancel()
        if video is None:
            feed.standing = "no video"
            feed.source.without_video("camera off (publishes no video)")
            self._release(feed)
            feed.task = asyncio.get_running_loop().create_task(self._unsubscribe(session, feed))
            return
        codec = str(video.get("codec", "")).lower()
        if codec not in DECODABLE:
            feed.standing = "cannot decode its video"
            feed.source.without_video(
                f"cannot decode its {codec or 'unknown'} video (VP8 or H.264 only)", error=True
            )
            self._release(feed)
            feed.task = asyncio.get_running_loop().create_task(self._unsubscribe(session, feed))
            return
        simulcast = bool(video.get("simulcast"))
        feed.task = asyncio.get_running_loop().create_task(
            self._subscribe(session, feed, mid, simulcast, private_id)
        )

    def _new_stream(self, display: str, feed_id: int) -> Participant:
        """The participant's stream, added under the first free ``ROOM/NAME[-k]``."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", display).strip("-.")[:NAME_CHARS]
        base = f"{self.name}/{safe or f'id{feed_id}'}"
        who = f"room {self.address.room}, {display or 'no name'!r} (id {feed_id})"
        participant = CallParticipant(self.name, display, feed_id)
        copy = 1
        while True:
            source = Participant(base if copy == 1 else f"{base}-{copy}", who, participant)
            try:
                self._add_source(source)
            except ValueError:  # the node already runs that stream
                copy += 1
                continue
            return source

    async def _subscribe(
        self,
        session: JanusSession,
        feed: _Feed,
        mid: str | None,
        simulcast: bool,
        private_id: object,
    ) -> None:
        """Subscribe to ``feed``'s video stream ``mid`` on a handle and peer connection
        of its own (replacing any earlier one), once it holds a stream slot; its track goes
        to the feed's stream."""
        await self._take_slot(feed)
        feed.standing = "scored"
        await self._unsubscribe(session, feed)
        wanted: dict = {"feed": feed.id, "mid": mid}
        if simulcast:
            wanted.update(substream=2, temporal=2)  # the top layer
        body = {"request": "join", "ptype": "subscriber", "room": self.address.room}
        body.update(self._pin(), streams=[wanted])
        if private_id is not None:
            body["private_id"] = private_id
        try:
            feed.handle = await session.attach(VIDEOROOM)
            attached = await session.message(feed.handle, body)
            feed.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                if track.kind == "video":
                    receivers = (t.receiver for t in pc.getTransceivers())
                    feed.source.watch(track, next(r for r in receivers if r.track is track))

            await pc.setRemoteDescription(RTCSessionDescription(**_sdp(attached.jsep)))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = {"type": "answer", "sdp": pc.localDescription.sdp}
            await session.message(feed.handle, {"request": "start"}, answer)
        except (JanusLost, JanusRefused, ValueError) as error:
            layer = ", top simulcast layer" if simulcast else ""
            feed.standing = "cannot subscribe to its video"
            feed.source.without_video(f"cannot subscribe to its video{layer}: {error}", error=True)
            self._release(feed)
            return
        if simulcast:
            log.info("%s: subscribed to the top simulcast layer", feed.source.stream_id)

    async def _take_slot(self, feed: _Feed) -> None:
        """Hold one of the node's stream slots: at once if one is free; otherwise say so
        (an ``error`` status of the participant's stream, no failure of it) and wait in
        line."""
        if feed.slot:
            return
        if not self._streams.take():
            feed.standing = "waiting for a stream slot"
            feed.source.wait_for_slot(
                f"the node is full (it scores {self._streams.limit} stream(s) at most)"
            )
            await self._streams.wait()
        feed.slot = True

    def _release(self, feed: _Feed) -> None:
        """Give the feed's stream slot back, if it holds one."""
        if feed.slot:
            feed.slot = False
            self._streams.give_back()

    async def _unsubscribe(self, session: JanusSession, feed: _Feed) -> None:
        """Drop the feed's subscription (peer connection and handle), if any."""
        pc, handle = feed.pc, feed.handle
        feed.pc, feed.handle = None, 0
        if pc is not None:
            await pc.close()
        if handle:
            await session.detach(handle)

    async def _end_feed(self, session: JanusSession, feed: _Feed, reason: str) -> None:
        """The participant is gone: its stream ends with ``reason``."""
        if feed.task is not None:
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed.task
        await feed.source.close(reason)
        await self._unsubscribe(session, feed)
        self._release(feed)

    async def _end_feeds(self, session: JanusSession, reason: str) -> None:
        """End every participant's stream."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await self._end_feed(session, feed, reason)

    def _pin(self) -> dict:
        """The room's PIN as a request field, if it has one."""
        return {"pin": self.address.pin} if self.address.pin else {}


def _sdp(jsep: dict | None) -> dict:
    """The offer of a Janus answer (``type`` and ``sdp``).

    Raises:
        ValueError: Janus sent none.
    """
    if not jsep or "sdp" not in jsep:
        raise ValueError("Janus sent no offer")
    return {"sdp": jsep["sdp"], "type": jsep.get("type", "offer")}
