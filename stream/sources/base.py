"""What every source is: an async iterator of :class:`~stream.events.Frame` records.

Every source has a ``stream_id``, yields frames with the source's own presentation time,
reports connection changes (:class:`~stream.events.Connection`) to the ``on_status``
callback its reader passes to :meth:`Source.frames`, and is closed with
``await source.close()``. ``live`` says whether the source runs at its own pace (a camera, a
call: the pipeline drops the oldest frames when it falls behind) or waits for the pipeline (a
file read as fast as possible: nothing is dropped). A call room's participant
(:mod:`stream.sources.rooms.participant`) also has ``participant``, a
:class:`~stream.events.CallParticipant` that its worker puts on every event of the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from stream.events import Frame, StreamStatus

StatusCallback = Callable[[StreamStatus], None]


def ignore_status(event: StreamStatus) -> None:
    """The default ``on_status``: nobody is listening."""


@runtime_checkable
class Source(Protocol):
    """A stream of frames (see the module doc)."""

    stream_id: str
    live: bool

    def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        """The frames in presentation order; ends when the source ends for good. Status
        changes while reading go to ``on_status``."""
        ...

    async def close(self) -> None:
        """Stop reading and release the connection or file; safe to call twice."""
        ...
