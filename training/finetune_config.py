"""Fine-tuning settings, apart from the training code so that ``--help`` needs no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FinetuneConfig:
    """Training settings.

    Attributes:
        epochs: most passes over the training clips.
        patience: epochs without a better validation AUC before stopping.
        batch_size: clips per step.
        learning_rate, weight_decay: AdamW's.
        clip_stride: frames between training clip starts (validation clips do not overlap).
        val_share: share of each class's videos held out for validation (at least one).
        seed: seeds the split, the initialisation order, shuffling and dropout.
    """

    epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    clip_stride: int = 5
    val_share: float = 0.2
    seed: int = 0
