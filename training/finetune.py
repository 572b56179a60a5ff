"""Fine-tune the temporal head on cached frame features: the paper's recipe.

The encoder stays frozen (its features come from :mod:`training.features`); the MS-TCN
and the linear head are trained on 25-frame clips, label 0 for real and 1 for fake, with a
binary cross-entropy weighted so both classes count equally. Videos, never clips, are split
between training and validation, so no validation clip shares frames with a training
clip. After each epoch the clip-level AUC on the validation videos decides which weights
are kept; training stops when it has not improved for ``patience`` epochs. Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from calibration.metrics import auc
from engines.clips import clip_starts
from engines.method import CLIP_FRAMES
from engines.model import TemporalHead
from errors import LipForensicsError
from training.features import SUFFIX, VideoFeatures, clip_features
from training.finetune_config import FinetuneConfig


@dataclass(frozen=True)
class LabelledVideo:
    """One video's cached features with its label (0 real, 1 fake).

    Attributes:
        name: for messages.
        features: float (N, 5, D), see :mod:`training.features`.
        runs: (start, stop) ranges of consecutive frames.
        label: 0 real, 1 fake.
    """

    name: str
    features: np.ndarray
    runs: tuple[tuple[int, int], ...]
    label: int


@dataclass
class FinetuneResult:
    """What training did: per-epoch ``(loss, validation AUC)`` and the epoch kept."""

    history: list[tuple[float, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_auc: float = float("nan")


def split_by_video(
    videos: Sequence[LabelledVideo], val_share: float, seed: int
) -> tuple[list[LabelledVideo], list[LabelledVideo]]:
    """(train, validation): per class, a seeded random ``val_share`` of the videos (at least
    one, and never all of them) goes to validation. Raises ``ValueError`` unless each class
    has at least two videos."""
    rng = np.random.default_rng(seed)
    train: list[LabelledVideo] = []
    val: list[LabelledVideo] = []
    for label in (0, 1):
        group = [v for v in videos if v.label == label]
        if len(group) < 2:
            kind = "real" if label == 0 else "fake"
            raise ValueError(f"need at least two {kind} videos (one to train, one to validate)")
        order = rng.permutation(len(group))
        held = min(max(1, round(val_share * len(group))), len(group) - 1)
        val += [group[i] for i in order[:held]]
        train += [group[i] for i in order[held:]]
    return train, val


def make_clips(videos: Sequence[LabelledVideo], stride: int) -> tuple[np.ndarray, np.ndarray]:
    """All clips every ``stride`` frames: float32 (M, 25, D) features and float32 (M,) labels."""
    clips, labels = [], []
    for video in videos:
        for start in clip_starts(video.runs, stride):
            clips.append(clip_features(video.features, start))
            labels.append(video.label)
    if not clips:
        raise ValueError("no 25-frame clips: every video is shorter than 1 s of face")
    return np.stack(clips).astype(np.float32), np.asarray(labels, dtype=np.float32)


def train_head(
    head: TemporalHead,
    train: Sequence[LabelledVideo],
    val: Sequence[LabelledVideo],
    config: FinetuneConfig,
    log: Callable[[str], None] = lambda _line: None,
) -> FinetuneResult:
    """Train ``head`` in place on the training videos' clips; it ends with the weights of
    the epoch with the best validation AUC. ``log`` gets one line per epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_x, train_y = make_clips(train, config.clip_stride)
    val_x, val_y = make_clips(val, CLIP_FRAMES)
    if len(set(val_y.tolist())) < 2:
        raise ValueError("the validation videos hold clips of one class only")
    weights = _balance(train_y)
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    result = FinetuneResult()
    best_state = copy.deepcopy(head.state_dict())
    for epoch in range(1, config.epochs + 1):
        loss = _epoch(head, optimiser, train_x, train_y, weights, config.batch_size, rng)
        val_auc = auc(predict(head, val_x), val_y)
        result.history.append((loss, val_auc))
        improved = not result.best_auc >= val_auc  # also true while best_auc is nan
        if improved:
            result.best_epoch, result.best_auc = epoch, val_auc
            best_state = copy.deepcopy(head.state_dict())
        log(f"epoch {epoch:3d}  loss {loss:.4f}  val AUC {val_auc:.4f}{'  *' if improved else ''}")
        if epoch - result.best_epoch >= config.patience:
            log(f"no better validation AUC for {config.patience} epochs: stopping")
            break
    head.load_state_dict(best_state)
    head.eval()
    return result


def _balance(labels: np.ndarray) -> np.ndarray:
    """Per-clip loss weights giving each class half the total weight."""
    weights = np.empty_like(labels)
    for label in (0.0, 1.0):
        chosen = labels == label
        weights[chosen] = len(labels) / (2.0 * max(int(chosen.sum()), 1))
    return weights


def _epoch(
    head: TemporalHead,
    optimiser: torch.optim.Optimizer,
    clips: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One shuffled pass; returns the mean weighted loss."""
    head.train()
    order = rng.permutation(len(clips))
    total = 0.0
    for first in range(0, len(order), batch_size):
        chosen = order[first : first + batch_size]
        if len(chosen) < 2:  # batch norm needs two samples
            continue
        logits = head(torch.from_numpy(clips[chosen]))
        loss = F.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(labels[chosen]), weight=torch.from_numpy(weights[chosen])
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(chosen)
    return total / len(order)


@torch.no_grad()
def predict(head: TemporalHead, clips: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits (float32) of (M, 25, D) clip features, in eval mode."""
    head.eval()
    out = [
        head(torch.from_numpy(clips[i : i + batch_size])) for i in range(0, len(clips), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def labelled_folder(
    folder: Path, label: int, weights: str, feature_dim: int, clip_stride: int
) -> list[LabelledVideo]:
    """Every feature file in ``folder`` as a :class:`LabelledVideo`; each must have been made
    with ``weights`` on a grid that ``clip_stride`` is a multiple of."""
    if not folder.is_dir():
        raise LipForensicsError(f"not a folder: {folder} (expected feature files from `features`)")
    files = sorted(folder.glob(f"*{SUFFIX}"))
    if not files:
        raise LipForensicsError(f"no *{SUFFIX} files in {folder} (run `features` first)")
    videos = []
    for path in files:
        try:
            cached = VideoFeatures.load(path)
        except (OSError, ValueError, KeyError) as error:
            raise LipForensicsError(f"cannot read {path} as a feature file: {error}") from None
        if clip_stride % cached.grid:
            raise LipForensicsError(
                f"--clip-stride must be a multiple of {cached.grid} (the grid of {path.name})"
            )
        if cached.weights != weights or cached.features.shape[-1] != feature_dim:
            raise LipForensicsError(
                f"{path} was made with other weights; rerun `features` with these --weights"
            )
        name = path.name.removesuffix(SUFFIX)
        features = cached.features.astype("float32")
        videos.append(LabelledVideo(name, features, cached.runs, label))
    return videos
