"""Leave-one-person-out folds over the demo detector's people.

In each fold one person is held out entirely; of the others, the first of
:data:`CALIBRATION_ORDER` who are not held out calibrate the detector (thresholds,
probability map, the head's early stopping) and everyone else trains it. The held-out
person is never trained or calibrated on, so the fold's figures on them say how the recipe
does on someone it has never seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: who calibrates a fold, in order of preference (P5 is the shipped build's calibration
#: person; P6 and P7 step in when P5, or P6, is held out); they alone get perturbed genuine
#: versions
CALIBRATION_ORDER = ("P5", "P6", "P7")


@dataclass(frozen=True)
class Fold:
    """One fold: who is held out, who calibrates, who trains (person keys)."""

    held_out: str
    calibrate: tuple[str, ...]
    train: tuple[str, ...]


def fold_for(
    held_out: str,
    everyone: Sequence[str],
    calibrators: int = 1,
    order: Sequence[str] = CALIBRATION_ORDER,
) -> Fold:
    """The fold holding ``held_out`` out of ``everyone``: the first ``calibrators`` people of
    ``order`` other than ``held_out`` calibrate, the rest of ``everyone`` trains.

    Raises ``ValueError`` for an unknown person, too few calibrators or no one to train.
    """
    if held_out not in everyone:
        raise ValueError(f"unknown person {held_out!r}; expected one of {', '.join(everyone)}")
    calibrate = tuple(p for p in order if p != held_out and p in everyone)[:calibrators]
    if len(calibrate) < calibrators:
        raise ValueError(f"holding out {held_out} leaves fewer than {calibrators} calibrators")
    train = tuple(p for p in everyone if p != held_out and p not in calibrate)
    if not train:
        raise ValueError(f"holding out {held_out} leaves no one to train on")
    return Fold(held_out, calibrate, train)
