"""Scores for a detector: ROC / AUC with a bootstrap interval, calibration error, figures.

Labels are 1 = fake, 0 = real throughout; scores are logits (higher = more likely fake).
Only numpy here, and matplotlib inside the two plotting functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def _as_scores_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    return scores, labels


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random fake outscores a random real
    (ties count one half). Needs at least one of each class."""
    scores, labels = _as_scores_labels(scores, labels)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs at least one real and one fake sample")
    ranks = _average_ranks(scores)
    rank_sum = ranks[labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank (the Mann-Whitney convention)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2)[inverse]


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


def bootstrap_auc(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """AUC with a percentile bootstrap interval; reals and fakes are resampled separately
    (stratified), so every resample has both classes. Deterministic for a given ``seed``."""
    scores, labels = _as_scores_labels(scores, labels)
    estimate = auc(scores, labels)
    fakes, reals = scores[labels], scores[~labels]
    rng = np.random.default_rng(seed)
    both = np.r_[np.ones(fakes.size, bool), np.zeros(reals.size, bool)]
    values = np.array(
        [
            auc(
                np.r_[rng.choice(fakes, fakes.size), rng.choice(reals, reals.size)],
                both,
            )
            for _ in range(resamples)
        ]
    )
    tail = (1.0 - level) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(estimate, float(min(low, estimate)), float(max(high, estimate)), level)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over every threshold, from (0,0) to (1,1)."""
    scores, labels = _as_scores_labels(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_pos = np.cumsum(sorted_labels)[last_of_tie]
    false_pos = np.cumsum(~sorted_labels)[last_of_tie]
    tpr = np.r_[0.0, true_pos / max(int(labels.sum()), 1)]
    fpr = np.r_[0.0, false_pos / max(int((~labels).sum()), 1)]
    return fpr, tpr


def accuracy_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Share of samples classified right when ``score >= threshold`` means fake."""
    scores, labels = _as_scores_labels(scores, labels)
    return float(np.mean((scores >= threshold) == labels))


@dataclass(frozen=True, slots=True)
class Reliability:
    """Equal-width bins of predicted fake-probability and what happened in each.

    Attributes:
        edges: bin edges, ``bins + 1`` values from 0 to 1.
        counts: samples per bin.
        confidence: mean predicted probability per bin (NaN where empty).
        frequency: observed share of fakes per bin (NaN where empty).
        ece: expected calibration error, sum over bins of share x |confidence - frequency|.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray
    ece: float


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> Reliability:
    """Bin predicted fake-probabilities and compare them with the observed fake rate."""
    probabilities, labels = _as_scores_labels(probabilities, labels)
    if probabilities.size == 0:
        raise ValueError("calibration error needs at least one sample")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, probabilities, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, probabilities, bins) / counts
        frequency = np.bincount(index, labels.astype(np.float64), bins) / counts
    filled = counts > 0
    gaps = np.abs(confidence[filled] - frequency[filled])
    ece = float(np.sum(counts[filled] / probabilities.size * gaps))
    return Reliability(edges, counts, confidence, frequency, ece)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """Write a ROC figure (PNG) with one line per named (fpr, tpr) curve."""
    figure, axes = _figure()
    for name, (fpr, tpr) in curves.items():
        axes.plot(fpr, tpr, drawstyle="steps-post", label=name)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    axes.set(xlabel="false-positive rate (real called fake)", ylabel="true-positive rate")
    _finish(figure, axes, path, title)


def plot_reliability(diagrams: dict[str, Reliability], path: Path, title: str) -> None:
    """Write a reliability diagram (PNG): observed fake rate against predicted probability."""
    figure, axes = _figure()
    for name, diagram in diagrams.items():
        filled = diagram.counts > 0
        axes.plot(
            diagram.confidence[filled],
            diagram.frequency[filled],
            marker="o",
            label=f"{name} (ECE {diagram.ece:.3f})",
        )
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    axes.set(xlabel="predicted fake probability", ylabel="observed share of fakes")
    _finish(figure, axes, path, title)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 5), dpi=100)
    axes.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    axes.grid(True, alpha=0.3)
    return figure, axes


def _finish(figure: Any, axes: Any, path: Path, title: str) -> None:
    from matplotlib import pyplot

    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def poisson_upper(count: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound on a Poisson mean after seeing ``count`` events
    (0 events -> about 3.0 at 95%, the "rule of three")."""
    alpha = 1.0 - confidence

    def cdf(mean: float) -> float:
        term = total = math.exp(-mean)
        for k in range(1, count + 1):
            term *= mean / k
            total += term
        return total

    low, high = 0.0, max(10.0, 3.0 * (count + 1))
    while cdf(high) > alpha:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if cdf(middle) > alpha:
            low = middle
        else:
            high = middle
    return high
