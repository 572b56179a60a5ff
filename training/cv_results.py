"""What one fold of the people cross-validation found on its held-out person, and the table.

From the held-out person's scored videos (:class:`~training.demo_results.ScoredVideo`:
genuine and manipulated versions of each recording) under the fold's calibrated policy:

* the largest window logit of their genuine footage and the alerts it raises (each one a
  false alert on a stranger);
* per manipulation type, the clip AUC of their genuine clips against that type's clips,
  and how many of their manipulated recordings raise an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from stream.alerts.policy import PolicyConfig
from training.cv_folds import Fold
from training.demo_results import GENUINE, ScoredVideo, manipulation_result, person_result

#: the manipulation types every fold reports, in table order
KINDS = ("freeze", "shift", "stutter", "flicker", "swap")


@dataclass(frozen=True)
class FoldResult:
    """One recipe's fold (see the module docstring); ``auc``, ``clips`` (genuine,
    manipulated) and ``alerted`` (recordings with an alert) are per manipulation type."""

    recipe: str
    held_out: str
    calibrated_on: list[str]
    trained_on: list[str]
    alert_logit: float
    calibration_max_logit: float
    early_stopping_auc: float
    genuine_seconds: float
    max_genuine_logit: float
    genuine_alerts: int
    recordings: int
    auc: dict[str, float] = field(default_factory=dict)
    clips: dict[str, list[int]] = field(default_factory=dict)
    alerted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    held_out_windows: dict[str, list[list[float]]] = field(default_factory=dict)
    calibration_windows: list[list[float]] = field(default_factory=list)

    @property
    def margin(self) -> float:
        """How far the held-out person's largest genuine logit stays under the alert
        threshold (negative: above it)."""
        return self.alert_logit - self.max_genuine_logit


def held_out_result(
    recipe: str,
    fold: Fold,
    videos: Sequence[ScoredVideo],
    policy: PolicyConfig,
    trained_kinds: Sequence[str],
    calibration: tuple[float, float],
    calibration_windows: Sequence[np.ndarray],
    seconds: float,
) -> FoldResult:
    """The :class:`FoldResult` of ``recipe`` on ``fold``: its held-out person's ``videos``
    (genuine and every type of :data:`KINDS`) under ``policy``; ``calibration`` is the
    largest genuine logit of the calibration footage and the early-stopping AUC on it, and
    ``calibration_windows`` that footage's window logits (one sequence per video). The
    window logits are kept (per kind, one sequence per recording) so that thresholds and
    probability maps can be fitted across folds afterwards."""
    person = person_result(fold.held_out, "", "held-out", videos, policy)
    kinds = [manipulation_result(k, k in trained_kinds, videos, policy) for k in KINDS]
    return FoldResult(
        recipe=recipe,
        held_out=fold.held_out,
        calibrated_on=list(fold.calibrate),
        trained_on=list(fold.train),
        alert_logit=round(policy.alert_logit, 3),
        calibration_max_logit=round(calibration[0], 3),
        early_stopping_auc=round(calibration[1], 4),
        genuine_seconds=person.genuine_seconds,
        max_genuine_logit=person.max_genuine_logit,
        genuine_alerts=person.genuine_alerts,
        recordings=sum(v.kind == GENUINE for v in videos),
        auc={m.kind: m.auc for m in kinds},
        clips={m.kind: [m.genuine_clips, m.manipulated_clips] for m in kinds},
        alerted={m.kind: m.recordings_alerted for m in kinds},
        seconds=round(seconds, 1),
        held_out_windows=windows_by_kind(videos),
        calibration_windows=[_rounded(w) for w in calibration_windows],
    )


def windows_by_kind(videos: Sequence[ScoredVideo]) -> dict[str, list[list[float]]]:
    """The videos' window logits per kind (genuine and every type of :data:`KINDS`), one
    JSON-friendly sequence per recording."""
    return {
        kind: [_rounded(v.windows) for v in videos if v.kind == kind] for kind in (GENUINE, *KINDS)
    }


def _rounded(logits: np.ndarray) -> list[float]:
    """Window logits as a JSON-friendly list (3 decimals)."""
    return [round(float(x), 3) for x in logits]


def markdown_table(results: Sequence[FoldResult], recipes: Sequence[str]) -> str:
    """One row per fold and recipe (recipes side by side per held-out person), then one
    summary row per recipe: folds with a genuine alert, the smallest margin, mean AUCs."""
    kinds = " | ".join(f"`{k}`" for k in KINDS)
    lines = [
        f"| held out | recipe | calibrated on | alert at | largest genuine logit | genuine alerts "
        f"| {kinds} | manipulated recordings alerted | s |",
        "|---|---|---|---|---|---|" + "---|" * len(KINDS) + "---|---|",
    ]
    order = list(dict.fromkeys(r.held_out for r in results))
    for person in order:
        for recipe in recipes:
            for r in results:
                if r.held_out == person and r.recipe == recipe:
                    lines.append(_row(r))
    for recipe in recipes:
        chosen = [r for r in results if r.recipe == recipe]
        if chosen:
            lines.append(_summary(recipe, chosen))
    return "\n".join(lines)


def _row(r: FoldResult) -> str:
    aucs = " | ".join(f"{r.auc[k]:.3f}" for k in KINDS)
    alerted = sum(r.alerted.values())
    return (
        f"| {r.held_out} | {r.recipe} | {','.join(r.calibrated_on)} | {r.alert_logit:+.2f} "
        f"| {r.max_genuine_logit:+.2f} | {r.genuine_alerts} | {aucs} "
        f"| {alerted} of {r.recordings * len(KINDS)} | {r.seconds:.0f} |"
    )


def _summary(recipe: str, results: Sequence[FoldResult]) -> str:
    """The recipe's row over its folds."""
    aucs = " | ".join(f"{np.mean([r.auc[k] for r in results]):.3f}" for k in KINDS)
    alerted = sum(sum(r.alerted.values()) for r in results)
    possible = sum(r.recordings * len(KINDS) for r in results)
    falsely = sum(r.genuine_alerts > 0 for r in results)
    margin = min(r.margin for r in results)
    return (
        f"| **{len(results)} folds** | **{recipe}** | | | smallest margin {margin:+.2f} "
        f"| {falsely} of {len(results)} folds | {aucs} | {alerted} of {possible} "
        f"| {sum(r.seconds for r in results):.0f} |"
    )
