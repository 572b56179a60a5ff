"""WHIP ingest (RFC 9725): publishers send WebRTC video over HTTP + aiortc.

``POST`` an SDP offer (``application/sdp``) -> ``201 Created`` with the SDP answer, a
``Location`` naming the new session (an unguessable id) and ``X-Stream-Id`` naming its
streams in events (comma-separated, one per video track); ``DELETE`` on that location ends
it; ``OPTIONS`` says what is allowed. ICE is not trickled: the answer carries all our
candidates. Each published video track becomes a :class:`~stream.sources.webrtc.WebRtcSource`
handed to ``add_source`` (the pipeline); audio is declined (answered ``inactive``).

Refusals, each with a one-line reason in the body: 415 not ``application/sdp``, 413 a body
over ``max_body``, 408 a body not sent within ``connect_timeout``, 400 not an SDP offer (or
one without the ICE credentials, ``a=fingerprint`` or ``a=setup`` that every media section
needs), 422 an offer without a video track to publish, with more than ``max_tracks``, or
that cannot be negotiated, 429 ``max_sessions`` already open or being offered, 503 the
node already watches ``max_streams`` streams (:class:`~stream.sources.slots.StreamSlots`),
404 an unknown session. A request holds its place among the ``max_sessions`` from the
moment it arrives, before its body is read, so that publishers racing each other cannot
overshoot the limit; the node's stream slots are taken once the offer says how many tracks
it publishes. A session ends on ``DELETE``, when ICE fails (a publisher that vanished
stops answering ICE consent checks), when it does not connect within ``connect_timeout``,
or on :meth:`close`; its peer connection is closed, its sources end and its stream slots
are given back. Bearer-token checks are the server's (:mod:`stream.server.app`).

Once connected, each source watches its video (:class:`~stream.sources.webrtc.WebRtcSource`):
a publisher that sends no new picture for ``stall_timeout`` seconds, while ICE keeps the
session alive, makes its streams ``stalled`` until the picture moves again.

ICE uses only the host addresses in ``ice_hosts`` when given (aioice's address discovery
is replaced process-wide: it has no per-connection setting) and STUN servers only when
``stun_servers`` lists some: by default nothing leaves the machine to find addresses.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aioice.ice
from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import MediaDescription, SessionDescription

from stream.events import Connection, StreamStatus
from stream.settings.server import WhipSettings
from stream.sources.base import Source, StatusCallback
from stream.sources.slots import StreamSlots
from stream.sources.webrtc import WebRtcSource

SDP_TYPE = "application/sdp"
#: directions of an offered media section in which the publisher sends.
_SENDING = (None, "sendrecv", "sendonly")


class Refusal(Exception):
    """A request we turn down: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> web.Response:
        """The plain-text error response."""
        return web.Response(status=self.status, text=self.reason + "\n")


@dataclass(frozen=True, slots=True)
class Offer:
    """An SDP offer that publishes video: its text and how many video tracks it sends."""

    sdp: str
    videos: int


def parse_offer(body: bytes) -> Offer:
    """``body`` as an offer that publishes video.

    Raises:
        Refusal: 400 for text that is not SDP or a media section without what a secure
            connection needs, 422 for SDP without a video track to publish.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "the offer is not UTF-8 text") from None
    if not text.lstrip().startswith("v=0"):
        raise Refusal(400, "the body is not an SDP offer (it must start with v=0)")
    try:
        session = SessionDescription.parse(text)
    except StopIteration:  # aiortc looks up the codec of each a=fmtp and a=rtcp-fb line
        raise Refusal(
            400, "malformed SDP offer: a payload type is used but no a=rtpmap line defines it"
        ) from None
    except Exception as error:  # the parser fails in many ways on malformed SDP
        raise Refusal(400, f"malformed SDP offer ({type(error).__name__})") from None
    for number, media in enumerate(session.media):
        if media.port != 0:
            _check_transport(number, media)
    videos = sum(
        media.kind == "video" and media.port != 0 and media.direction in _SENDING
        for media in session.media
    )
    if not videos:
        raise Refusal(422, "the offer has no video track to publish")
    return Offer(text, videos)


def _check_transport(number: int, media: MediaDescription) -> None:
    """Refuse a media section that lacks what ICE and DTLS need (aiortc would fail on it
    later, with an assertion or an attribute error)."""
    missing = []
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        missing.append("a=ice-ufrag and a=ice-pwd")
    if media.dtls is None:  # aiortc reads a=setup into the DTLS parameters
        missing.append("a=setup")
    elif not media.dtls.fingerprints:
        missing.append("a=fingerprint")
    if missing:
        what = " and ".join(missing)
        raise Refusal(400, f"the offer's media section {number} ({media.kind}) has no {what}")


def use_ice_hosts(addresses: Sequence[str]) -> None:
    """Offer only ``addresses`` as ICE host candidates, for every peer connection of this
    process (aioice finds addresses in one module-level function and skips loopback)."""
    chosen = list(addresses)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(chosen)


@dataclass(eq=False)
class WhipSession:
    """One publisher: its peer connection, the sources its video tracks feed and the
    node's stream slots it holds."""

    id: str
    name: str
    pc: RTCPeerConnection
    slots: int
    sources: list[WebRtcSource] = field(default_factory=list)
    timer: asyncio.Task[None] | None = None
    ended: bool = False


class WhipEndpoint:
    """The WHIP resource and its sessions; handlers for :mod:`stream.server.app`'s routes.

    Args:
        add_source: called with each new video source (e.g. ``Pipeline.add_source``).
        on_status: called with every :class:`StreamStatus` of the sessions' streams.
        settings: limits and ICE settings.
        streams: the node's stream slots, shared with any other kind of stream.
    """

    def __init__(
        self,
        add_source: Callable[[Source], object],
        *,
        on_status: StatusCallback | None = None,
        settings: WhipSettings | None = None,
        streams: StreamSlots,
    ) -> None:
        self.settings = settings or WhipSettings()
        self.streams = streams
        self.sessions: dict[str, WhipSession] = {}
        self._add_source = add_source
        self._on_status = on_status or (lambda event: None)
        #: requests between their arrival and their session (or refusal)
        self._arriving = 0
        if self.settings.ice_hosts:
            use_ice_hosts(self.settings.ice_hosts)

    async def publish(self, request: web.Request) -> web.Response:
        """``POST``: an SDP offer in, ``201`` with the answer and the session's ``Location``."""
        try:
            if len(self.sessions) + self._arriving >= self.settings.max_sessions:
                raise Refusal(429, f"too many sessions (at most {self.settings.max_sessions})")
            self._arriving += 1  # counted before the body is read: racing offers wait their turn
            try:
                session, answer = await self._open(request)
            finally:
                self._arriving -= 1
        except Refusal as refusal:
            response = refusal.response()
            if refusal.status in (429, 503):
                response.headers["Retry-After"] = str(int(self.settings.connect_timeout))
            return response
        return web.Response(
            status=201,
            text=answer,
            content_type=SDP_TYPE,
            headers={
                "Location": f"{request.path.rstrip('/')}/{session.id}",
                "X-Stream-Id": ", ".join(source.stream_id for source in session.sources),
            },
        )

    async def _open(self, request: web.Request) -> tuple[WhipSession, str]:
        """Read and check the offer, take its stream slots, negotiate."""
        if request.content_type != SDP_TYPE:
            raise Refusal(415, f"expected Content-Type: {SDP_TYPE}")
        limit = self.settings.connect_timeout
        try:
            body = await asyncio.wait_for(_read_body(request, self.settings.max_body), limit)
        except TimeoutError:
            raise Refusal(408, f"the offer did not arrive within {limit:g} s") from None
        offer = parse_offer(body)
        if offer.videos > self.settings.max_tracks:
            raise Refusal(
                422,
                f"the offer publishes {offer.videos} video tracks "
                f"(at most {self.settings.max_tracks} per session)",
            )
        if not self.streams.take(offer.videos):
            raise Refusal(
                503, f"this node already watches its {self.streams.limit} streams at most"
            )
        try:
            return await self._negotiate(offer)
        except BaseException:
            self.streams.give_back(offer.videos)
            raise

    async def end(self, request: web.Request) -> web.Response:
        """``DELETE`` on a session's location: end it (404 if there is no such session)."""
        session = self.sessions.get(request.match_info.get("session", ""))
        if session is None:
            return Refusal(404, "no such WHIP session").response()
        await self._end(session, "the publisher ended the session")
        return web.Response(status=200)

    async def options(self, request: web.Request) -> web.Response:
        """``OPTIONS``: the allowed methods (CORS preflight is the server's)."""
        allow = "OPTIONS, DELETE" if "session" in request.match_info else "OPTIONS, POST"
        return web.Response(status=204, headers={"Allow": allow, "Accept-Post": SDP_TYPE})

    async def close(self) -> None:
        """End every session (server shutdown)."""
        for session in list(self.sessions.values()):
            await self._end(session, "the server is shutting down")

    async def _negotiate(self, offer: Offer) -> tuple[WhipSession, str]:
        """A peer connection answering ``offer``; its video sources go to the pipeline."""
        ice_servers = [RTCIceServer(url) for url in self.settings.stun_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        tracks: list[MediaStreamTrack] = []
        pc.on("track", tracks.append)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind != "video":
                    transceiver.direction = "inactive"
            if not any(track.kind == "video" for track in tracks):
                raise Refusal(422, "the offer has no video track to publish")
            await pc.setLocalDescription(await pc.createAnswer())
        except (Refusal, asyncio.CancelledError):
            await pc.close()
            raise
        except Exception as error:  # aiortc rejects unusable offers with assorted errors
            await pc.close()
            why = " ".join(str(error).split()) or type(error).__name__
            raise Refusal(422, f"cannot negotiate the offer: {why}") from None
        session = WhipSession(
            secrets.token_urlsafe(24), f"whip-{secrets.token_hex(3)}", pc, slots=offer.videos
        )
        self.sessions[session.id] = session
        videos = [track for track in tracks if track.kind == "video"]
        for number, track in enumerate(videos):
            name = session.name if number == 0 else f"{session.name}-{number}"
            source = WebRtcSource(track, name, stall_timeout=self.settings.stall_timeout)
            session.sources.append(source)
        pc.on("connectionstatechange", lambda: self._state_changed(session))
        session.timer = asyncio.create_task(self._connect_deadline(session))
        for source in session.sources:
            self._add_source(source)
        return session, pc.localDescription.sdp

    async def _state_changed(self, session: WhipSession) -> None:
        state = session.pc.connectionState
        if state == "connected":
            if session.timer is not None:
                session.timer.cancel()
            self._status(session, Connection.CONNECTED, "WebRTC publisher connected")
            for source in session.sources:
                source.watch()  # from now on the publisher should be sending
        elif state == "failed":
            await self._end(session, "the publisher stopped answering (ICE failed)")
        elif state == "closed":
            await self._end(
                session, "the connection closed (the publisher left or stopped answering)"
            )

    async def _connect_deadline(self, session: WhipSession) -> None:
        await asyncio.sleep(self.settings.connect_timeout)
        await self._end(session, f"not connected within {self.settings.connect_timeout:g} s")

    async def _end(self, session: WhipSession, reason: str) -> None:
        """Close ``session`` once: its sources end, its resources are freed."""
        if session.ended:
            return
        session.ended = True
        self.sessions.pop(session.id, None)
        self.streams.give_back(session.slots)
        if session.timer is not None and session.timer is not asyncio.current_task():
            session.timer.cancel()
        for source in session.sources:  # first, so that no stall is reported after this
            await source.close()
        self._status(session, Connection.DISCONNECTED, reason)
        await session.pc.close()

    def _status(self, session: WhipSession, status: Connection, detail: str) -> None:
        for source in session.sources:
            self._on_status(StreamStatus(source.stream_id, status, detail))


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all."""
    too_large = Refusal(413, f"the offer is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = b""
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return body
        body += chunk
    raise too_large
