"""The cross-fold alert rule and probability map (training/cv_thresholds.py), on fold
results made up so that the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from engines.method import sigmoid
from stream.alerts.policy import count_alerts
from training.cv_results import KINDS, FoldResult
from training.cv_thresholds import (
    RULE,
    CrossFoldRule,
    cross_fold_rule,
    leave_one_out,
    markdown_checks,
    threshold_over,
    thresholds_for,
)
from training.demo_results import GENUINE


def fold(
    person: str, genuine_max: float, fake: float = 20.0, sustained: bool = False
) -> FoldResult:
    """A fold whose held-out genuine footage peaks at ``genuine_max`` (for one window, or
    for three in a row when ``sustained``) and whose manipulations sit at ``fake``."""
    peak = [genuine_max] * (3 if sustained else 1)
    genuine = [-6.0, -4.0, *peak, -5.0, -6.0]
    windows = {GENUINE: [genuine]} | {k: [[fake] * 5] for k in KINDS}
    return FoldResult(
        recipe="r",
        held_out=person,
        calibrated_on=["P5"],
        trained_on=[],
        alert_logit=0.0,
        calibration_max_logit=0.0,
        early_stopping_auc=0.5,
        genuine_seconds=1.0,
        max_genuine_logit=genuine_max,
        genuine_alerts=0,
        recordings=1,
        held_out_windows=windows,
        calibration_windows=[[-3.0, 0.0], [-1.0]],
    )


FOLDS = [fold("P1", 1.0), fold("P2", 2.0), fold("P3", 3.0), fold("P4", -1.0)]
SPREAD = float(np.std([1.0, 2.0, 3.0, -1.0], ddof=1))


def test_the_alert_threshold_is_the_largest_held_out_genuine_logit_plus_the_spread() -> None:
    assert threshold_over([1.0, 2.0, 3.0, -1.0]) == pytest.approx((3.0 + SPREAD, SPREAD))
    rule = cross_fold_rule(FOLDS, 2000)
    assert rule.maxima == {"P1": 1.0, "P2": 2.0, "P3": 3.0, "P4": -1.0}
    assert rule.alert_logit == pytest.approx(3.0 + SPREAD, abs=1e-3)
    assert rule.recipe == "r" and rule.encoder_steps == 2000


def test_the_map_crosses_even_odds_between_the_classes() -> None:
    rule = cross_fold_rule(FOLDS, 1)
    assert rule.scale > 0
    assert 3.0 < rule.even_odds < 20.0
    assert sigmoid(rule.scale * 20.0 + rule.bias) > 0.9
    assert sigmoid(rule.scale * -5.0 + rule.bias) < 0.1


def test_each_fold_is_judged_by_the_threshold_of_the_others() -> None:
    checks = {c.held_out: c for c in leave_one_out(FOLDS)}
    others = [1.0, 2.0, -1.0]  # without P3, the largest
    assert checks["P3"].alert_logit == pytest.approx(threshold_over(others)[0], abs=0.01)
    assert checks["P3"].margin == pytest.approx(threshold_over(others)[0] - 3.0, abs=0.01)
    for check in checks.values():
        assert check.alerted == {k: 1 for k in KINDS} and check.recordings == 1
        assert check.genuine_alerts == 0
    table = markdown_checks(list(checks.values()), cross_fold_rule(FOLDS, 1))
    assert table.count("\n| P") == 4 and "alert at" in table


def test_a_stranger_above_every_other_fold_alerts_under_their_rule() -> None:
    loud = fold("P5", 15.0, sustained=True)
    check = next(c for c in leave_one_out([*FOLDS, loud]) if c.held_out == "P5")
    assert check.genuine_alerts == 1 and check.margin < 0


def test_a_networks_thresholds_are_the_rule_with_its_calibration_footage_as_evidence(
    tmp_path,
) -> None:
    rule = cross_fold_rule(FOLDS, 1)
    calibration = [np.array([1.0, 4.0, 2.0]), np.array([0.0, 3.5])]
    thresholds = thresholds_for(calibration, rule, stride=5, weights_sha256="abc")
    policy = thresholds.policy
    assert policy.alert_logit == pytest.approx(rule.alert_logit)
    assert policy.suspicious_logit == pytest.approx(min(rule.even_odds, rule.alert_logit))
    assert (policy.escalate_windows, policy.clear_windows) == (3, 10)
    assert thresholds.probability(7.0) == pytest.approx(sigmoid(rule.scale * 7.0 + rule.bias))
    # "clear" (below SUSPICIOUS) never reads as more likely fake than not
    assert thresholds.probability(policy.suspicious_logit) <= 0.5 + 1e-9
    evidence = thresholds.evidence
    assert evidence.rule == RULE and evidence.max_genuine_logit == 4.0
    assert evidence.margin == pytest.approx(rule.alert_logit - 4.0)
    assert evidence.false_alerts == 0 == count_alerts(np.concatenate(calibration), policy)
    saved = rule.save(tmp_path / "rule.json")
    assert CrossFoldRule.load(saved) == rule


def test_one_fold_or_mixed_recipes_make_no_rule() -> None:
    with pytest.raises(ValueError):
        cross_fold_rule(FOLDS[:1], 1)
    other = FoldResult(**{**FOLDS[0].__dict__, "recipe": "other"})
    with pytest.raises(ValueError):
        cross_fold_rule([FOLDS[1], other], 1)
