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
    margin_over,
    markdown_checks,
    thresholds_for,
)
from training.demo_results import GENUINE


def fold(person: str, reference: float, genuine_max: float, fake: float = 12.0) -> FoldResult:
    """A fold whose calibration footage peaks at ``reference``, whose held-out genuine
    footage peaks at ``genuine_max`` and whose manipulations sit at ``fake`` (all relative
    to nothing: the rule must read them relative to ``reference``)."""
    genuine = [reference + x for x in (-6.0, -4.0, -5.0, genuine_max - reference, -6.0)]
    windows = {GENUINE: [genuine]} | {k: [[fake + reference] * 5] for k in KINDS}
    return FoldResult(
        recipe="r",
        held_out=person,
        calibrated_on=["P5"],
        trained_on=[],
        alert_logit=0.0,
        calibration_max_logit=reference,
        early_stopping_auc=0.5,
        genuine_seconds=1.0,
        max_genuine_logit=genuine_max,
        genuine_alerts=0,
        recordings=1,
        held_out_windows=windows,
        calibration_windows=[[reference - 3.0, reference], [reference - 1.0]],
    )


# each fold's network has its own logit scale offset; relative offsets 1, 2, 3, -1
FOLDS = [fold("P1", 10.0, 11.0), fold("P2", -5.0, -3.0), fold("P3", 0.0, 3.0), fold("P4", 4.0, 3.0)]


def test_the_margin_is_the_largest_offset_plus_the_spread() -> None:
    assert margin_over([1.0, 2.0, 3.0, -1.0]) == pytest.approx(
        (3.0 + np.std([1, 2, 3, -1], ddof=1), np.std([1, 2, 3, -1], ddof=1))
    )
    rule = cross_fold_rule(FOLDS, 2000)
    assert rule.offsets == {"P1": 1.0, "P2": 2.0, "P3": 3.0, "P4": -1.0}
    assert rule.margin == pytest.approx(3.0 + rule.spread, abs=1e-3)
    assert rule.recipe == "r" and rule.encoder_steps == 2000


def test_the_map_is_fitted_in_units_relative_to_each_network() -> None:
    rule = cross_fold_rule(FOLDS, 1)
    assert rule.scale > 0
    # genuine windows sit at or under +3, fakes at +12 relative: even odds between them
    assert 3.0 < rule.even_odds < 12.0
    assert sigmoid(rule.scale * 12.0 + rule.bias) > 0.9


def test_each_fold_is_judged_by_the_margin_of_the_others() -> None:
    checks = {c.held_out: c for c in leave_one_out(FOLDS)}
    others = [1.0, 2.0, -1.0]  # without P3, the largest offset
    assert checks["P3"].alert_logit == pytest.approx(0.0 + margin_over(others)[0], abs=0.01)
    assert checks["P3"].margin == pytest.approx(margin_over(others)[0] - 3.0, abs=0.01)
    for check in checks.values():
        assert check.alerted == {k: 1 for k in KINDS} and check.recordings == 1
    table = markdown_checks(list(checks.values()), cross_fold_rule(FOLDS, 1))
    assert table.count("\n| P") == 4 and "margin" in table


def test_a_stranger_above_every_other_fold_alerts_under_their_rule() -> None:
    loud = fold("P5", 0.0, 30.0)
    loud = FoldResult(
        **{
            **loud.__dict__,
            "held_out_windows": loud.held_out_windows | {GENUINE: [[30.0, 30.0, 30.0, 30.0]]},
        }
    )
    check = next(c for c in leave_one_out([*FOLDS, loud]) if c.held_out == "P5")
    assert check.genuine_alerts == 1 and check.margin < 0


def test_a_networks_thresholds_place_the_rule_at_its_calibration_footage(tmp_path) -> None:
    rule = cross_fold_rule(FOLDS, 1)
    calibration = [np.array([1.0, 7.0, 2.0]), np.array([0.0, 6.5])]
    thresholds = thresholds_for(calibration, rule, stride=5, weights_sha256="abc")
    policy = thresholds.policy
    assert policy.alert_logit == pytest.approx(7.0 + rule.margin)
    assert policy.suspicious_logit == pytest.approx(min(7.0 + rule.even_odds, policy.alert_logit))
    assert (policy.escalate_windows, policy.clear_windows) == (3, 10)
    # the map reads the same at the same relative logit, whatever the network's reference
    assert thresholds.probability(7.0 + 2.0) == pytest.approx(sigmoid(rule.scale * 2 + rule.bias))
    # "clear" (below SUSPICIOUS) never reads as more likely fake than not
    assert thresholds.probability(policy.suspicious_logit) <= 0.5 + 1e-9
    assert thresholds.evidence.rule == RULE and thresholds.evidence.margin == rule.margin
    assert count_alerts(np.concatenate(calibration), policy) == 0
    saved = rule.save(tmp_path / "rule.json")
    assert CrossFoldRule.load(saved) == rule


def test_one_fold_or_mixed_recipes_make_no_rule() -> None:
    with pytest.raises(ValueError):
        cross_fold_rule(FOLDS[:1], 1)
    other = FoldResult(**{**FOLDS[0].__dict__, "recipe": "other"})
    with pytest.raises(ValueError):
        cross_fold_rule([FOLDS[1], other], 1)
