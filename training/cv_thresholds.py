"""Thresholds and a probability map that hold on strangers, fitted across the people folds.

One calibration person does not say where a stranger's genuine logits lie: in the
cross-validation the fold thresholds set that way ranged over 14 logits, and held-out
genuine footage went above them. Here every fold's *held-out* person sets the rule instead.

In fold *f* the held-out person's largest genuine window logit is ``maximum_f``. The alert
threshold over a set of folds is the largest of them plus their spread (standard
deviation): above every stranger's genuine footage seen so far by one more fold-to-fold
spread. Logits are taken as they are: read relative to each network's calibration footage
(its largest, or its mean and spread) the held-out windows of all folds separate worse
(pooled window AUC 0.62-0.67 against 0.65-0.69 raw, docs/demo_detector.md), so the
calibration person is no yardstick. :func:`leave_one_out` checks the rule honestly: fold
*f* is judged with the threshold of the other folds.

The probability map is fitted on every fold's held-out windows, genuine (0) against
manipulated (1), the two classes weighted equally (a window is as likely fake as genuine
before its logit is seen). SUSPICIOUS starts where the map reaches 0.5 (or at the alert
threshold if that is lower), so a window the detector calls clear never reads as more
likely fake than not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from calibration.metrics import poisson_upper
from calibration.thresholds import (
    Evidence,
    Thresholds,
    face_hours,
    fit_platt,
    hysteresis_windows,
    now_iso,
)
from engines.method import sigmoid
from stream.alerts.policy import PolicyConfig, count_alerts
from training.cv_results import KINDS, FoldResult
from training.demo_results import GENUINE

#: the stride (frames) the folds' window logits were scored at
FOLD_STRIDE = 5
#: the rule's name in a thresholds file's evidence
RULE = "cross-fold"


@dataclass(frozen=True)
class CrossFoldRule:
    """The alert threshold and probability map of one recipe, from its folds (module
    docstring): ``maxima`` per held-out person, ``alert_logit`` = their largest +
    ``spread``; ``p = sigmoid(scale * logit + bias)``."""

    recipe: str
    encoder_steps: int
    maxima: dict[str, float]
    alert_logit: float
    spread: float
    scale: float
    bias: float

    @property
    def even_odds(self) -> float:
        """The logit where the map reads 0.5."""
        return -self.bias / self.scale

    def policy(self, stride: int = FOLD_STRIDE) -> PolicyConfig:
        """The alert policy for windows every ``stride`` frames (hysteresis as
        ``calibration.thresholds.choose_policy`` sets it)."""
        escalate, clear = hysteresis_windows(stride, 0.6, 2.0)
        suspicious = min(self.even_odds, self.alert_logit)
        return PolicyConfig(suspicious, self.alert_logit, escalate, clear)

    def save(self, path: Path) -> Path:
        """Write the rule as JSON (the build reads it with :meth:`load`)."""
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> CrossFoldRule:
        """The rule :meth:`save` wrote; ``OSError``/``ValueError``/``TypeError`` if bad."""
        return cls(**json.loads(path.read_text()))


def threshold_over(maxima: Sequence[float]) -> tuple[float, float]:
    """(alert threshold, spread) over folds' held-out genuine maxima: the largest plus their
    standard deviation."""
    values = np.asarray(maxima, dtype=np.float64)
    spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.max()) + spread, spread


def probability_map(results: Sequence[FoldResult]) -> tuple[float, float]:
    """(scale, bias) of the map fitted on the folds' held-out windows, genuine and
    manipulated weighted equally."""
    genuine, fake = [], []
    for result in results:
        for kind, sequences in result.held_out_windows.items():
            values = [np.asarray(s, np.float64) for s in sequences if len(s)]
            (genuine if kind == GENUINE else fake).extend(values)
    real, fakes = np.concatenate(genuine), np.concatenate(fake)
    weights = np.r_[np.full(real.size, 0.5 / real.size), np.full(fakes.size, 0.5 / fakes.size)]
    labels = np.r_[np.zeros(real.size, bool), np.ones(fakes.size, bool)]
    return fit_platt(np.r_[real, fakes], labels, weights=weights * (real.size + fakes.size))


def cross_fold_rule(results: Sequence[FoldResult], encoder_steps: int) -> CrossFoldRule:
    """The rule of one recipe's folds (every fold of ``results`` must be of one recipe)."""
    recipes = {r.recipe for r in results}
    if len(recipes) != 1 or len(results) < 2:
        raise ValueError("a cross-fold rule takes two or more folds of one recipe")
    maxima = {r.held_out: r.max_genuine_logit for r in results}
    alert, spread = threshold_over(list(maxima.values()))
    scale, bias = probability_map(results)
    return CrossFoldRule(
        recipe=recipes.pop(),
        encoder_steps=encoder_steps,
        maxima=maxima,
        alert_logit=round(alert, 3),
        spread=round(spread, 3),
        scale=round(scale, 5),
        bias=round(bias, 5),
    )


def thresholds_for(
    calibration_windows: Sequence[Sequence[float]],
    rule: CrossFoldRule,
    *,
    stride: int,
    weights_sha256: str,
) -> Thresholds:
    """A network's thresholds file: the cross-fold rule's policy and map, with its
    calibration footage (genuine, never trained on) as the evidence replayed through it."""
    policy = rule.policy(stride)
    sequences = [np.asarray(s, np.float64) for s in calibration_windows if len(s)]
    logits = np.concatenate(sequences)
    hours = face_hours(sequences, stride)
    alerts = sum(count_alerts(s, policy) for s in sequences)
    evidence = Evidence(
        rule=RULE,
        target_false_alerts_per_hour=1.0,
        genuine_faces=len(sequences),
        genuine_windows=int(logits.size),
        face_hours=hours,
        false_alerts=alerts,
        false_alerts_per_hour_upper95=poisson_upper(alerts) / hours,
        suspicious_share=float(np.mean(logits >= policy.suspicious_logit)),
        max_genuine_logit=float(logits.max()),
        margin=policy.alert_logit - float(logits.max()),
    )
    return Thresholds(
        policy=policy,
        stride=stride,
        scale=rule.scale,
        bias=rule.bias,
        weights_sha256=weights_sha256,
        evidence=evidence,
        created=now_iso(),
    )


@dataclass(frozen=True)
class FoldCheck:
    """One fold judged by the threshold of the other folds."""

    held_out: str
    alert_logit: float
    max_genuine_logit: float
    genuine_alerts: int
    suspicious_share: float
    alerted: dict[str, int]
    recordings: int

    @property
    def margin(self) -> float:
        """How far the held-out genuine footage stays under the alert threshold."""
        return self.alert_logit - self.max_genuine_logit


def leave_one_out(results: Sequence[FoldResult]) -> list[FoldCheck]:
    """Every fold judged with the rule of the others (module docstring)."""
    checks = []
    for result in results:
        others = [r for r in results if r is not result]
        policy = cross_fold_rule(others, 0).policy()
        windows = result.held_out_windows
        genuine = np.concatenate([np.asarray(s) for s in windows[GENUINE] if len(s)])
        checks.append(
            FoldCheck(
                held_out=result.held_out,
                alert_logit=round(policy.alert_logit, 2),
                max_genuine_logit=result.max_genuine_logit,
                genuine_alerts=sum(count_alerts(s, policy) for s in windows[GENUINE]),
                suspicious_share=round(float(np.mean(genuine >= policy.suspicious_logit)), 3),
                alerted={k: sum(count_alerts(s, policy) > 0 for s in windows[k]) for k in KINDS},
                recordings=len(windows[GENUINE]),
            )
        )
    return checks


def markdown_checks(checks: Sequence[FoldCheck], rule: CrossFoldRule) -> str:
    """The leave-one-out table, then the rule over all folds."""
    kinds = " | ".join(f"`{k}`" for k in KINDS)
    lines = [
        "| held out | alert at (the others' rule) | largest genuine logit | margin "
        f"| genuine alerts | genuine windows at p >= 0.5 | recordings alerted: {kinds} |",
        "|---|---|---|---|---|---|" + "---|" * len(KINDS),
    ]
    for c in checks:
        alerted = " | ".join(f"{c.alerted[k]} of {c.recordings}" for k in KINDS)
        lines.append(
            f"| {c.held_out} | {c.alert_logit:+.2f} | {c.max_genuine_logit:+.2f} "
            f"| {c.margin:+.2f} | {c.genuine_alerts} | {100 * c.suspicious_share:.1f}% "
            f"| {alerted} |"
        )
    p_alert = sigmoid(rule.scale * rule.alert_logit + rule.bias)
    lines += [
        "",
        f"All {len(rule.maxima)} folds of `{rule.recipe}`: held-out genuine maxima "
        + ", ".join(f"{k} {v:+.2f}" for k, v in rule.maxima.items())
        + f"; alert at {rule.alert_logit:+.2f} (the largest + spread {rule.spread:.2f}); "
        f"map p = sigmoid({rule.scale:.3f} x logit {rule.bias:+.3f}): 0.5 at "
        f"{rule.even_odds:+.2f}, {p_alert:.3f} at the alert threshold.",
    ]
    return "\n".join(lines)
