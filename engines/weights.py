"""A weight file and what belongs to it, in one record (as torchvision describes pretrained
weights): the file and its SHA-256, the preprocessing its network was trained with, its
calibrated thresholds file, and the disclaimer that must be shown wherever it is used.

:func:`weights_of` describes any weight file; the files this project ships are described
in :data:`BUNDLED` (the demo detector, which carries a disclaimer), and a file with the
same content as one of them gets its record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from engines.digest import file_sha256
from engines.method import PAPER_PREPROCESSING, Preprocessing
from errors import CheckpointError


def thresholds_path_for(weights_path: str | Path) -> Path:
    """``<weights without suffix>.thresholds.json``, next to the weights: where
    ``calibrate`` writes the thresholds of a weight file."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.stem + ".thresholds.json")


@dataclass(frozen=True)
class Weights:
    """A weight file and what belongs to it.

    Attributes:
        path: the weight file.
        preprocessing: how mouth crops become its network's input.
        thresholds: its calibrated thresholds file, or None (uncalibrated).
        disclaimer: a statement to show wherever these weights are used, or None.
    """

    path: Path
    preprocessing: Preprocessing = PAPER_PREPROCESSING
    thresholds: Path | None = None
    disclaimer: str | None = None

    @cached_property
    def sha256(self) -> str:
        """The weight file's SHA-256 (read once)."""
        return file_sha256(self.path)


_DEMO_FILE = Path(__file__).resolve().parent.parent / "training" / "demo" / "demo_lipforensics.pth"
#: the demo detector that ``build-demo`` writes and ``demo`` plays (training/demo/).
DEMO = Weights(
    path=_DEMO_FILE,
    thresholds=thresholds_path_for(_DEMO_FILE),
    disclaimer=(
        "DEMO DETECTOR: trained on synthetic mouth manipulations of genuine footage; it is not "
        "a deepfake detector. Real use takes the authors' weights (lipforensics_ff.pth)."
    ),
)
#: the weight files this project ships.
BUNDLED = (DEMO,)


def weights_of(path: str | Path, thresholds: str | Path | None = None) -> Weights:
    """The record of the weight file ``path``: a shipped file's (:data:`BUNDLED`) when it
    has the same content, with ``thresholds`` if given, else the thresholds file next to
    ``path`` when there is one.

    Raises:
        CheckpointError: ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    digest = file_sha256(path)
    shipped = next((w for w in BUNDLED if w.path.is_file() and w.sha256 == digest), None)
    found = Path(thresholds) if thresholds is not None else thresholds_path_for(path)
    described = replace(
        shipped or Weights(path),
        path=path,
        thresholds=found if thresholds is not None or found.is_file() else None,
    )
    described.__dict__["sha256"] = digest  # the cached_property's value: read once
    return described
