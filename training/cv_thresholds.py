"""Thresholds and a probability map that hold on strangers, fitted across the people folds.

One calibration person does not say where a stranger's genuine logits lie: in the
cross-validation the fold thresholds set that way ranged over 14 logits, and held-out
genuine footage went above them. Here every fold's *held-out* person sets the rule instead.

An alert needs ``hold`` windows in a row at or above the alert threshold (the policy's
escalation), so what a stranger's genuine footage can raise is set by its **sustained
maximum**: the largest logit that ``hold`` consecutive windows all reach (for a hold of one
window, the largest window logit). In fold *f* the held-out person's sustained maximum is
``maximum_f``; the alert threshold over a set of folds is the largest of them plus their
spread (standard deviation): above every stranger's genuine footage seen so far by one
more fold-to-fold spread. The hold is chosen among :data:`HOLDS` (0.6 to 1.6 s of new
video at stride 5) by :func:`choose_hold`: the one whose leave-one-out check
(:func:`leave_one_out`: fold *f* judged with the threshold of the other folds) raises no
false alert and catches manipulated recordings in the most folds. Logits are taken as they
are: read relative to each network's calibration footage (its largest, or its mean and
spread) the held-out windows of all folds separate no better (docs/demo_detector.md), so
the calibration person is no yardstick.

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

from calibration.thresholds import (
    Thresholds,
    face_hours,
    fit_platt,
    genuine_evidence,
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
#: the holds (windows in a row at stride 5) the rule may choose: 0.6, 1.0 and 1.6 s of
#: new video, so that an alert comes within about two seconds of a manipulation's start
HOLDS = (3, 5, 8)
#: windows below the alert threshold before the level falls back (2 s at stride 5)
CLEAR_WINDOWS = 10


@dataclass(frozen=True)
class CrossFoldRule:
    """The alert threshold and probability map of one recipe, from its folds (module
    docstring): ``maxima`` per held-out person (sustained over ``hold`` windows at stride
    5), ``alert_logit`` = their largest + ``spread``; ``p = sigmoid(scale * logit +
    bias)``."""

    recipe: str
    encoder_steps: int
    hold: int
    maxima: dict[str, float]
    alert_logit: float
    spread: float
    scale: float
    bias: float

    @property
    def even_odds(self) -> float:
        """The logit where the map reads 0.5."""
        return -self.bias / self.scale

    def policy(self) -> PolicyConfig:
        """The alert policy, for windows every :data:`FOLD_STRIDE` frames (other strides
        keep the hold's and the clearing's seconds: ``Thresholds.policy_for``)."""
        suspicious = min(self.even_odds, self.alert_logit)
        return PolicyConfig(suspicious, self.alert_logit, self.hold, CLEAR_WINDOWS)

    def save(self, path: Path) -> Path:
        """Write the rule as JSON (the build reads it with :meth:`load`)."""
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> CrossFoldRule:
        """The rule :meth:`save` wrote; ``OSError``/``ValueError``/``TypeError`` if bad."""
        return cls(**json.loads(path.read_text()))


def sustained_maximum(sequences: Sequence[Sequence[float]], hold: int) -> float:
    """The largest logit that ``hold`` consecutive windows of one of ``sequences`` all
    reach (-inf when none is that long)."""
    best = float("-inf")
    for sequence in sequences:
        x = np.asarray(sequence, dtype=np.float64)
        if x.size >= hold:
            runs = np.lib.stride_tricks.sliding_window_view(x, hold).min(axis=1)
            best = max(best, float(runs.max()))
    return best


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


def cross_fold_rule(
    results: Sequence[FoldResult], encoder_steps: int, hold: int = HOLDS[0]
) -> CrossFoldRule:
    """The rule of one recipe's folds with a ``hold`` of so many windows (every fold of
    ``results`` must be of one recipe)."""
    recipes = {r.recipe for r in results}
    if len(recipes) != 1 or len(results) < 2:
        raise ValueError("a cross-fold rule takes two or more folds of one recipe")
    maxima = {
        r.held_out: round(sustained_maximum(r.held_out_windows[GENUINE], hold), 3) for r in results
    }
    finite = [m for m in maxima.values() if np.isfinite(m)]
    if not finite:
        raise ValueError(f"no held-out genuine footage lasts {hold} windows")
    alert, spread = threshold_over(finite)
    scale, bias = probability_map(results)
    return CrossFoldRule(
        recipe=recipes.pop(),
        encoder_steps=encoder_steps,
        hold=hold,
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
    calibration footage (genuine, never trained on) at ``stride`` as the evidence replayed
    through it."""
    if stride != FOLD_STRIDE:
        raise ValueError(f"the cross-fold rule was fitted at stride {FOLD_STRIDE}, not {stride}")
    policy = rule.policy()
    sequences = [np.asarray(s, np.float64) for s in calibration_windows if len(s)]
    largest = float(max(s.max() for s in sequences))
    hours = face_hours(sequences, stride)
    evidence = genuine_evidence(
        sequences, policy, RULE, 1.0, hours, margin=policy.alert_logit - largest
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
    sustained_max: float
    genuine_alerts: int
    suspicious_share: float
    alerted: dict[str, int]
    recordings: int

    @property
    def margin(self) -> float:
        """How far the held-out genuine footage's sustained maximum stays under the alert
        threshold (negative: it alerts)."""
        return self.alert_logit - self.sustained_max


def leave_one_out(results: Sequence[FoldResult], hold: int = HOLDS[0]) -> list[FoldCheck]:
    """Every fold judged with the rule of the others at ``hold`` (module docstring)."""
    checks = []
    for result in results:
        others = [r for r in results if r is not result]
        policy = cross_fold_rule(others, 0, hold).policy()
        windows = result.held_out_windows
        sustained = sustained_maximum(windows[GENUINE], hold)
        genuine = np.concatenate([np.asarray(s) for s in windows[GENUINE] if len(s)])
        checks.append(
            FoldCheck(
                held_out=result.held_out,
                alert_logit=round(policy.alert_logit, 2),
                max_genuine_logit=result.max_genuine_logit,
                sustained_max=round(sustained, 2),
                genuine_alerts=sum(count_alerts(s, policy) for s in windows[GENUINE]),
                suspicious_share=round(float(np.mean(genuine >= policy.suspicious_logit)), 3),
                alerted={k: sum(count_alerts(s, policy) > 0 for s in windows[k]) for k in KINDS},
                recordings=len(windows[GENUINE]),
            )
        )
    return checks


def choose_hold(results: Sequence[FoldResult]) -> int:
    """The hold of :data:`HOLDS` whose leave-one-out check raises no false alert and
    catches manipulated recordings in the most folds (then the most recordings, then the
    shortest hold); with a false alert at every hold, the one with the fewest."""

    def score(hold: int) -> tuple[int, int, int, int]:
        checks = leave_one_out(results, hold)
        falsely = sum(c.genuine_alerts > 0 for c in checks)
        folds = sum(sum(c.alerted.values()) > 0 for c in checks)
        caught = sum(sum(c.alerted.values()) for c in checks)
        return (-falsely, folds, caught, -hold)

    longest = max(len(s) for r in results for s in r.held_out_windows[GENUINE])
    return max((h for h in HOLDS if h <= longest), key=score)


def markdown_checks(checks: Sequence[FoldCheck], rule: CrossFoldRule) -> str:
    """The leave-one-out table, then the rule over all folds."""
    kinds = " | ".join(f"`{k}`" for k in KINDS)
    lines = [
        "| held out | alert at (the others' rule) | largest genuine logit "
        "| sustained over the hold | margin "
        f"| genuine alerts | genuine windows at p >= 0.5 | recordings alerted: {kinds} |",
        "|---|---|---|---|---|---|---|" + "---|" * len(KINDS),
    ]
    for c in checks:
        alerted = " | ".join(f"{c.alerted[k]} of {c.recordings}" for k in KINDS)
        lines.append(
            f"| {c.held_out} | {c.alert_logit:+.2f} | {c.max_genuine_logit:+.2f} "
            f"| {c.sustained_max:+.2f} "
            f"| {c.margin:+.2f} | {c.genuine_alerts} | {100 * c.suspicious_share:.1f}% "
            f"| {alerted} |"
        )
    p_alert = sigmoid(rule.scale * rule.alert_logit + rule.bias)
    lines += [
        "",
        f"All {len(rule.maxima)} folds of `{rule.recipe}`, hold {rule.hold} windows: held-out "
        "genuine sustained maxima "
        + ", ".join(f"{k} {v:+.2f}" for k, v in rule.maxima.items())
        + f"; alert at {rule.alert_logit:+.2f} (the largest + spread {rule.spread:.2f}); "
        f"map p = sigmoid({rule.scale:.3f} x logit {rule.bias:+.3f}): 0.5 at "
        f"{rule.even_odds:+.2f}, {p_alert:.3f} at the alert threshold.",
    ]
    return "\n".join(lines)
