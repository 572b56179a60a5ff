"""The recipes the people cross-validation compares (``run_stream.py people-cv``).

A recipe is everything a fold trains and calibrates with: the manipulations it trains on,
how many people calibrate it, the encoder's training (steps, augmentation), the network's
widths and the head's fine-tuning. ``today`` is ``build-demo``'s recipe; the others change
one thing or a few, named in their description.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields, is_dataclass, replace

from engines.model import ModelConfig
from training.crop_augment import Augmentation
from training.cv_folds import CALIBRATION_ORDER, Fold, fold_for
from training.demo_detector import DEMO_CONFIG, TRAIN_KINDS
from training.demo_encoder import EncoderConfig
from training.finetune_config import FinetuneConfig


@dataclass(frozen=True)
class Recipe:
    """How a fold's detector is made (see the module docstring)."""

    name: str
    description: str
    train_kinds: tuple[str, ...]
    calibrators: int
    encoder: EncoderConfig
    model: ModelConfig
    finetune: FinetuneConfig
    #: how many differently seeded versions of each training manipulation it trains on (the
    #: fold's seed and the ones after it; calibration and held-out people keep one)
    fake_variants: int = 1
    #: the head also trains on every training video as a source of a frame rate drawn from
    #: this range (fps) shows it at 25 fps (None: only as recorded)
    slowed_fps: tuple[float, float] | None = None
    #: who calibrates, in order of preference (only they have perturbed genuine versions)
    calibration_order: tuple[str, ...] = CALIBRATION_ORDER

    def __post_init__(self) -> None:
        if not set(self.calibration_order) <= set(CALIBRATION_ORDER):
            raise ValueError(
                f"recipe {self.name}: only {', '.join(CALIBRATION_ORDER)} can calibrate "
                "(they alone have perturbed genuine versions)"
            )

    def fold(self, held_out: str, everyone: Sequence[str]) -> Fold:
        """The fold of this recipe that holds out ``held_out`` (see
        :func:`~training.cv_folds.fold_for`)."""
        return fold_for(held_out, everyone, self.calibrators, self.calibration_order)

    def with_steps(self, steps: int) -> Recipe:
        """This recipe with ``steps`` encoder training steps."""
        return replace(self, encoder=replace(self.encoder, steps=steps))

    def key(self) -> str:
        """Everything that makes this recipe (all but its description), as text that a
        field added later with a default leaves unchanged: saved fold results are matched
        by it."""
        made_of = _set_fields(self)
        del made_of["description"]
        return json.dumps(made_of, sort_keys=True)


def _set_fields(value: object) -> object:
    """A dataclass as a dict of its fields that differ from their defaults (nested
    dataclasses likewise; fields without a default always); other values as they are."""
    if not is_dataclass(value):
        return value
    found = {}
    for field in fields(value):
        current = getattr(value, field.name)
        if field.default is not MISSING and current == field.default:
            continue
        found[field.name] = _set_fields(current)
    return found


TODAY = Recipe(
    name="today",
    description="build-demo's recipe: freeze/shift/stutter/flicker, one calibration person, "
    "shift/flip/brightness augmentation",
    train_kinds=TRAIN_KINDS,
    calibrators=1,
    encoder=EncoderConfig(),
    model=DEMO_CONFIG,
    finetune=FinetuneConfig(),
)
AUGMENTED = replace(
    TODAY,
    name="augmented",
    description="today's, with camera augmentation of the encoder's windows: JPEG (p 0.5), "
    "scale (p 0.3), 15 fps repeats (p 0.3), lighting (p 0.5)",
    encoder=EncoderConfig(
        augmentation=Augmentation(compression=0.5, scale=0.3, repeats=0.3, lighting=0.5)
    ),
)
STEADY = replace(
    AUGMENTED,
    name="steady",
    description="augmented's, without `stutter` in training (a mouth refreshed every 3-5 "
    "frames looks like genuine footage of a lower frame rate; `stutter` is then a type kept "
    "aside, like `swap`)",
    train_kinds=tuple(kind for kind in TRAIN_KINDS if kind != "stutter"),
)
WIDE = replace(
    AUGMENTED,
    name="wide",
    description="augmented's, with the frame encoder twice as wide (16/16/32/64/128; the "
    "head as it was)",
    model=replace(DEMO_CONFIG, frontend_channels=16, trunk_widths=(16, 32, 64, 128)),
)
VARIED = replace(
    AUGMENTED,
    name="varied",
    description="augmented's, trained on two differently seeded versions of every training "
    "manipulation (other freeze frames, shifts, stutter periods, flicker jitter)",
    fake_variants=2,
)
PACED = replace(
    AUGMENTED,
    name="paced",
    description="augmented's, with the frame rates the product takes (10-20 fps sources "
    "shown at 25): the encoder's repeats drawn from 10-20 fps, and the head also trained on "
    "a slowed copy of every training video",
    encoder=replace(
        AUGMENTED.encoder,
        augmentation=replace(AUGMENTED.encoder.augmentation, repeat_fps=(10.0, 20.0)),
    ),
    slowed_fps=(10.0, 20.0),
)
PAIRED = replace(
    AUGMENTED,
    name="paired",
    description="augmented's, with the encoder's batches in pairs: every genuine window "
    "beside the same frame of a manipulation of the same recording, augmented alike",
    encoder=replace(AUGMENTED.encoder, paired=True),
)
SHAKEN = replace(
    PAIRED,
    name="shaken",
    description="paired's, with every frame of half the encoder's windows moved, scaled and "
    "brightened by its own small draw (a shaking camera, landmarks on a small face)",
    encoder=replace(PAIRED.encoder, augmentation=replace(PAIRED.encoder.augmentation, jitter=0.5)),
)
DIVERSE = replace(
    PAIRED,
    name="diverse",
    description="paired's, with P7 calibrating instead of P5, so that P5 trains (the only "
    "woman and, with P7, the only high-resolution face; 9.5 s against P7's 2.4)",
    calibration_order=("P7", "P6", "P5"),
)
#: every recipe by name, in the order the table shows them
RECIPES = {
    recipe.name: recipe
    for recipe in (
        *(TODAY, AUGMENTED, STEADY, WIDE, VARIED, PACED),
        *(PAIRED, SHAKEN, DIVERSE),
    )
}
#: the recipe of the shipped demo detector (``build-demo``), chosen by ``people-cv``: with
#: camera augmentation and twice the encoder steps of ``today`` (docs/demo_detector.md)
SHIPPED = AUGMENTED.with_steps(4000)
