"""More faces than the machine can follow: faces take turns, a whole window each.

A 5x5 call gallery on two cores cannot have every face's landmarks and encodings on every
frame. Rather than every face losing frames (no window would ever hold 25 consecutive
ones), the faces of a stream take turns: a group of as many faces as the machine keeps up
with is followed for ``span`` consecutive frames (a whole window), then the next group, round
robin in a queue where a face that appears waits at the back and one that ends leaves
nobody else's place changed, so that every face gets verdicts and their
intervals stay within one turn of each other. The faces that rest keep their ids and places
(:class:`stream.faces.stage.FaceStage` is told which; the search does not take them for
new faces).

How many faces fit is found as the stream runs, from what falling behind looks like
whatever its cause (landmarks, encodings, other streams): frames queued past half the
queue, frames or windows dropped. Each time, the group shrinks to what the face stage's
recent pace allows in a frame period (with headroom), and at least to 70% of what was
followed; after :data:`CALM_FRAMES` frames without such a sign it may grow by one face.
"""

from __future__ import annotations

from collections.abc import Iterable

from engines.method import FRAME_PERIOD

#: the share of the faces followed that the group keeps when the stream falls behind
SHRINK = 0.7
#: frames without a sign of falling behind before the group may grow by one face
CALM_FRAMES = 125
#: the share of a frame period the face stage may take (the rest: decoding, encodings)
HEADROOM = 0.6
#: how fast the stage's measured pace follows the latest frames (exponential average)
SMOOTHING = 0.2


class Turns:
    """Which faces of one stream are followed on each frame; see the module doc.

    Args:
        span: frames a group is followed before the next group's turn (a window's length,
            so that each turn gives every face of the group a whole window).
    """

    def __init__(self, span: int) -> None:
        self.span = span
        #: faces followed at once (None: every face, nothing fell behind so far)
        self.capacity: int | None = None
        self._group: frozenset[int] = frozenset()
        self._left = 0  # frames left in the current group's turn
        self._queue: list[int] = []  # the faces in the order of their next turns
        self._calm = 0  # frames since the last sign of falling behind
        self._pace = 0.0  # seconds the face stage took per followed face, recently

    def behind(self, followed: int) -> None:
        """The stream fell behind while ``followed`` faces were followed: follow fewer
        (once per ``span`` frames: the backlog of the last change takes that to clear)."""
        if self._changed_lately or followed <= 1:
            return
        fits = int(HEADROOM * FRAME_PERIOD / self._pace) if self._pace > 0 else followed
        self.capacity = max(1, min(int(SHRINK * followed), fits))
        self._calm = 0
        self._left = 0  # a new group of the new size from the next frame

    def timed(self, seconds: float, followed: int) -> None:
        """The face stage took ``seconds`` (wall clock) for a frame with ``followed``
        faces."""
        if followed > 0:
            per_face = seconds / followed
            self._pace += (per_face - self._pace) * (SMOOTHING if self._pace > 0 else 1.0)

    @property
    def _changed_lately(self) -> bool:
        return self.capacity is not None and self._calm < self.span

    def resting(self, faces: Iterable[int]) -> frozenset[int]:
        """The faces (track ids) that rest on this frame: none while every face fits."""
        known = frozenset(faces)
        self._calm += 1
        self._queue = [face for face in self._queue if face in known]
        self._queue += sorted(known - set(self._queue))  # newcomers wait at the back
        if self.capacity is not None and self._calm >= CALM_FRAMES:
            self._calm = 0
            self.capacity += 1
            if self.capacity >= len(known):
                self.capacity = None
        if self.capacity is None or self.capacity >= len(known):
            self._group, self._left = known, 0
        elif self._left <= 0 or not self._group & known:
            turn, self._queue = self._queue[: self.capacity], self._queue[self.capacity :]
            self._queue += turn
            self._group, self._left = frozenset(turn), self.span
        self._left -= 1
        return known - self._group

    @property
    def at_once(self) -> int | None:
        """Faces followed at once while faces take turns (None: every face, every frame)."""
        return self.capacity
