"""The streams a node scores at once, whoever opens them: a cap shared by every kind.

``serve`` has one :class:`StreamSlots` of ``max_streams``: a WHIP session takes one per video
track (at once, or it is refused), a call room one per participant it scores (waiting in
line when the node is full: :meth:`StreamSlots.wait`). ``run`` caps its call rooms'
participants with one of ``max_participants``. A slot given back goes to the first in line
before anyone else can take it, so a participant that waits is never overtaken.
"""

from __future__ import annotations

import asyncio
from collections import deque


class StreamSlots:
    """At most ``limit`` streams at once (see the module doc).

    Attributes:
        limit: the most slots taken at once.
        taken: slots taken now.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._line: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """How many wait in line for a slot."""
        return sum(not future.done() for future in self._line)

    def take(self, count: int = 1) -> bool:
        """Take ``count`` slots if that many are free; False (nothing taken) if not."""
        if self.taken + count > self.limit:
            return False
        self.taken += count
        return True

    async def wait(self) -> None:
        """Take one slot, waiting in line until one is given back if none is free. A
        cancelled wait leaves the line (and gives back a slot handed over meanwhile)."""
        if self.take():
            return
        turn = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back()  # handed over just as the wait was cancelled
            raise
        finally:
            if turn in self._line:
                self._line.remove(turn)

    def give_back(self, count: int = 1) -> None:
        """Free ``count`` slots taken earlier: each goes to the first in line, if any."""
        for _ in range(count):
            while self._line:
                turn = self._line.popleft()
                if not turn.done():
                    turn.set_result(None)  # the slot stays taken, by the one in line
                    break
            else:
                self.taken = max(0, self.taken - 1)
