"""The cross-fold alert rule and probability map (training/cv_thresholds.py), on fold
results made up so that the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from engines.method import sigmoid
from stream.alerts.policy import count_alerts
from training.cv_results import KINDS, FoldResult
from training.cv_thresholds import (
    HOLDS,
    RULE,
    CrossFoldRule,
    choose_hold,
    cross_fold_rule,
    leave_one_out,
    markdown_checks,
    sustained_maximum,
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
    genuine = [-6.0, -4.0, *peak, -5.0, -6.0, -6.0, -7.0, -6.0, -6.5]
    windows = {GENUINE: [genuine]} | {k: [[fake] * 10] for k in KINDS}
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


def test_the_sustained_maximum_is_what_a_hold_of_so_many_windows_can_reach() -> None:
    sequences = [[0.0, 5.0, 4.0, 6.0, 1.0], [3.0, 3.0]]
    assert sustained_maximum(sequences, 1) == 6.0
    assert sustained_maximum(sequences, 2) == 4.0
    assert sustained_maximum(sequences, 3) == 4.0
    assert sustained_maximum(sequences, 6) == float("-inf")


def test_the_alert_threshold_is_the_largest_held_out_genuine_logit_plus_the_spread() -> None:
    assert threshold_over([1.0, 2.0, 3.0, -1.0]) == pytest.approx((3.0 + SPREAD, SPREAD))
    rule = cross_fold_rule(FOLDS, 2000, hold=1)
    assert rule.maxima == {"P1": 1.0, "P2": 2.0, "P3": 3.0, "P4": -1.0}
    assert rule.alert_logit == pytest.approx(3.0 + SPREAD, abs=1e-3)
    assert rule.recipe == "r" and rule.encoder_steps == 2000 and rule.hold == 1
    # over three windows in a row the one-window peaks do not count
    held = cross_fold_rule(FOLDS, 2000, hold=3)
    assert held.maxima == {"P1": -5.0, "P2": -5.0, "P3": -5.0, "P4": -5.0}
    assert held.policy().escalate_windows == 3


def test_the_map_crosses_even_odds_between_the_classes() -> None:
    rule = cross_fold_rule(FOLDS, 1)
    assert rule.scale > 0
    assert 3.0 < rule.even_odds < 20.0
    assert sigmoid(rule.scale * 20.0 + rule.bias) > 0.9
    assert sigmoid(rule.scale * -5.0 + rule.bias) < 0.1


def test_each_fold_is_judged_by_the_threshold_of_the_others() -> None:
    checks = {c.held_out: c for c in leave_one_out(FOLDS, hold=1)}
    others = [1.0, 2.0, -1.0]  # without P3, the largest
    assert checks["P3"].alert_logit == pytest.approx(threshold_over(others)[0], abs=0.01)
    assert checks["P3"].margin == pytest.approx(threshold_over(others)[0] - 3.0, abs=0.01)
    assert checks["P3"].sustained_max == checks["P3"].max_genuine_logit == 3.0
    for check in checks.values():
        assert check.alerted == {k: 1 for k in KINDS} and check.recordings == 1
        assert check.genuine_alerts == 0
    table = markdown_checks(list(checks.values()), cross_fold_rule(FOLDS, 1, hold=1))
    assert table.count("\n| P") == 4 and "alert at" in table


def test_a_stranger_above_every_other_fold_alerts_under_their_rule() -> None:
    loud = fold("P5", 15.0, sustained=True)
    check = next(c for c in leave_one_out([*FOLDS, loud], hold=3) if c.held_out == "P5")
    assert check.genuine_alerts == 1 and check.margin < 0


def test_the_hold_is_the_shortest_that_keeps_every_stranger_clear() -> None:
    # a one-window spike of a stranger far above the others: a hold of 3 lets it pass
    spiky = [*FOLDS, fold("P5", 15.0)]
    assert choose_hold(spiky) == HOLDS[0] == 3
    # a stranger who stays high for 3 windows, not 5: the hold grows to 5
    sustained = fold("P6", 15.0, sustained=True)
    assert choose_hold([*FOLDS, sustained]) == 5


def test_a_networks_thresholds_are_the_rule_with_its_calibration_footage_as_evidence(
    tmp_path,
) -> None:
    rule = cross_fold_rule(FOLDS, 1, hold=1)
    calibration = [np.array([1.0, 4.0, 2.0]), np.array([0.0, 3.5])]
    thresholds = thresholds_for(calibration, rule, stride=5, weights_sha256="abc")
    policy = thresholds.policy
    assert policy.alert_logit == pytest.approx(rule.alert_logit)
    assert policy.suspicious_logit == pytest.approx(min(rule.even_odds, rule.alert_logit))
    assert (policy.escalate_windows, policy.clear_windows) == (1, 10)
    assert thresholds.probability(7.0) == pytest.approx(sigmoid(rule.scale * 7.0 + rule.bias))
    # "clear" (below SUSPICIOUS) never reads as more likely fake than not
    assert thresholds.probability(policy.suspicious_logit) <= 0.5 + 1e-9
    evidence = thresholds.evidence
    assert evidence.rule == RULE and evidence.max_genuine_logit == 4.0
    assert evidence.margin == pytest.approx(rule.alert_logit - 4.0)
    assert evidence.false_alerts == 0 == count_alerts(np.concatenate(calibration), policy)
    saved = rule.save(tmp_path / "rule.json")
    assert CrossFoldRule.load(saved) == rule
    with pytest.raises(ValueError, match="stride"):
        thresholds_for(calibration, rule, stride=10, weights_sha256="abc")


def test_one_fold_or_mixed_recipes_make_no_rule() -> None:
    with pytest.raises(ValueError):
        cross_fold_rule(FOLDS[:1], 1)
    other = FoldResult(**{**FOLDS[0].__dict__, "recipe": "other"})
    with pytest.raises(ValueError):
        cross_fold_rule([FOLDS[1], other], 1)
