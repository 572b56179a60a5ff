"""Sources of several streams: a call room, one stream per participant.

A :class:`Room` is not a stream itself: the pipeline runs it (``Pipeline.add_room``) and it
adds a :class:`~stream.sources.base.Source` per participant as they come, ending each when
its participant leaves. :mod:`janus_room` watches a Janus VideoRoom (``janus://``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from stream.sources.base import Source, StatusCallback


@runtime_checkable
class Room(Protocol):
    """A source of streams that come and go (see the package doc)."""

    #: the room's name on this node: its participants' stream ids start with it
    name: str

    async def run(self, add_source: Callable[[Source], object], on_status: StatusCallback) -> None:
        """Watch the room until :meth:`close`: hand each participant's stream to
        ``add_source`` (which raises ValueError for a stream id already running: try
        another), end it when the participant leaves, and report the room's own status
        (as the status of the stream named :attr:`name`) to ``on_status``."""
        ...

    async def close(self) -> None:
        """Leave the room: the participants' streams end, then :meth:`run` returns."""
        ...
