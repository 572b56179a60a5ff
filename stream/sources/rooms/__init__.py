"""Sources of several streams: a call room, one stream per participant.

A :class:`Room` is not a stream itself: the pipeline runs it (``Pipeline.add_room``) and it
adds a :class:`~stream.sources.base.Source` per participant as they come, ending each when
its participant leaves. A participant it scores holds one of the node's stream slots
(:class:`~stream.sources.slots.StreamSlots`) while it is scored; one that finds none free
has an ``error`` status that says so, and is scored as soon as a slot is given back.
:mod:`janus_room` watches a Janus VideoRoom (``janus://``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from stream.events import Alert, CallParticipant, StreamStatus
from stream.sources.base import Source, StatusCallback
from stream.sources.slots import StreamSlots


@runtime_checkable
class Room(Protocol):
    """A source of streams that come and go (see the package doc)."""

    #: the room's name on this node: its participants' stream ids start with it
    name: str

    #: the room's address as it may be shown (secrets masked)
    shown: str
    #: the room's own latest status (None: none yet)
    state: StreamStatus | None
    #: whether it tells its participants of their alerts (:meth:`on_alert`)
    announces: bool

    async def run(
        self,
        add_source: Callable[[Source], object],
        on_status: StatusCallback,
        streams: StreamSlots,
    ) -> None:
        """Watch the room until :meth:`close`: hand each participant's stream to
        ``add_source`` (which raises ValueError for a stream id already running: try
        another), score it while it holds one of ``streams``, end it when the participant
        leaves, and report the room's own status (as the status of the stream named
        :attr:`name`) to ``on_status``."""
        ...

    def on_alert(self, alert: Alert) -> None:
        """Every alert of the node, handed over while the room is watched when it
        :attr:`announces`: it tells its participants of theirs; never blocks."""
        ...

    def participants(self) -> list[tuple[str, CallParticipant, str]]:
        """Each participant now: its stream id, who it is, and where it stands
        (``scored``, ``waiting for a stream slot``, ``no video``)."""
        ...

    async def close(self) -> None:
        """Leave the room: the participants' streams end, then :meth:`run` returns."""
        ...
