"""The room hears about alerts: a data-only publisher in a Janus VideoRoom.

With ``announce=NAME`` in a room's address, the watcher joins the room a second time, as a
publisher named ``NAME`` that publishes one data channel (label ``alerts``) and no audio or
video: the room's participants are told of it as of any publisher, and anyone in the room
may subscribe to it. Each alert of one of the room's participants is sent on it as one
JSON text message::

    {"level": "alert", "participant": {"room": "1234", "name": "Bob Smith",
     "feed": 5107609986375902}, "time": 1790000000.1, "id": "5f0c0e3d..."}

``level`` the verdict's level (``alert``), ``participant`` who it is about (the room's name
on the node, the display name, Janus's id of the participant: the alert event's own
``participant``), ``time`` the alert's wall time (seconds since 1970), ``id`` the alert
event's id. Without ``announce`` nothing is published.

A subscriber hears the messages only once its own peer has opened a data channel on the
subscription (any label): Janus tells the VideoRoom that a peer's data channels are ready
when the peer opens one, and relays a publisher's data only to subscribers that are ready
(``janus.js`` opens ``JanusDataChannel`` when the answer asks for data, ``tracks: [{type:
"data"}]``). Janus then delivers them on a channel it opens itself, labelled with the
announcer's feed id. An alert raised while no one is ready, or while the announcer's own
channel is not open (before its connection is up, during a reconnect), is not kept.
"""

from __future__ import annotations

import asyncio
import json

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from stream.events import Alert
from stream.sources.rooms.janus_api import JanusSession

VIDEOROOM = "janus.plugin.videoroom"
#: the data channel's label.
CHANNEL = "alerts"
#: seconds the data channel may take to open once Janus answered.
OPEN_TIMEOUT = 10.0


def announcement(alert: Alert) -> dict[str, object]:
    """What the room hears of ``alert`` (see the module doc)."""
    verdict = alert.verdict
    who = verdict.participant.to_dict() if verdict.participant is not None else None
    return {
        "level": str(verdict.level),
        "participant": who,
        "time": verdict.wall_time,
        "id": alert.id,
    }


class Announcer:
    """A data-only publisher named ``name`` in ``room`` on ``session`` (see the module
    doc); :meth:`start`, then :meth:`send`, then :meth:`close`.

    Attributes:
        id: its feed id in the room (0 before it joined).
        sent: alerts sent so far.
    """

    def __init__(self, session: JanusSession, room: int | str, name: str, pin: dict) -> None:
        self.session, self.room, self.name, self._pin = session, room, name, pin
        self.id = 0
        self.sent = 0
        self._handle = 0
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._channel = self._pc.createDataChannel(CHANNEL)

    async def start(self) -> None:
        """Join as a publisher, publish the data channel and wait until it is open.

        Raises:
            JanusLost, JanusRefused: as :meth:`JanusSession.message`.
            ValueError: Janus answered the offer without an SDP answer, or the channel
                did not open within :data:`OPEN_TIMEOUT` seconds.
        """
        self._handle = await self.session.attach(VIDEOROOM)
        join = {"request": "join", "ptype": "publisher", "room": self.room, "display": self.name}
        joined = await self.session.message(self._handle, {**join, **self._pin})
        self.id = int(joined.data.get("id") or 0)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        offer = {"type": "offer", "sdp": self._pc.localDescription.sdp}
        published = await self.session.message(self._handle, {"request": "publish"}, offer)
        if not published.jsep or "sdp" not in published.jsep:
            raise ValueError("Janus sent no answer to the data channel's offer")
        opened = asyncio.Event()
        self._channel.on("open", opened.set)
        await self._pc.setRemoteDescription(
            RTCSessionDescription(published.jsep["sdp"], published.jsep.get("type", "answer"))
        )
        try:
            await asyncio.wait_for(opened.wait(), OPEN_TIMEOUT)
        except TimeoutError:
            raise ValueError(f"the data channel did not open within {OPEN_TIMEOUT:g} s") from None

    def send(self, alert: Alert) -> bool:
        """Tell the room of ``alert``; False when the channel is not open (nothing sent)."""
        if self._channel.readyState != "open":
            return False
        self._channel.send(json.dumps(announcement(alert)))
        self.sent += 1
        return True

    async def close(self) -> None:
        """Stop publishing and leave (a lost session is no error)."""
        await self._pc.close()
        if self._handle:
            await self.session.detach(self._handle)
