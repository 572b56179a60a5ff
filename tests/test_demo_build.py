"""The multi-person demo build's inputs and its check (training/demo_build.py), without
training: the cross-fold rule it reads, and when a build may replace the shipped files."""

from __future__ import annotations

import dataclasses

import pytest

from errors import LipForensicsError
from training.cv_recipes import SHIPPED
from training.cv_thresholds import CrossFoldRule
from training.demo_build import RULE_FILE, DemoReport, load_rule, report_passes

PASSING = DemoReport(
    seconds=1.0,
    recipe="r",
    weights_bytes=1,
    parameters=1,
    early_stopping_auc=0.7,
    alert_logit=10.0,
    alert_probability=0.9,
    suspicious_logit=4.0,
    held_out="P1",
    held_out_genuine_alerts=0,
    held_out_max_genuine_logit=3.0,
    held_out_mean_auc=0.85,
    demo_kind="swap",
    demo_genuine_alerts=0,
    demo_manipulated_alerts=1,
)


def test_the_committed_rule_is_the_shipped_recipes() -> None:
    rule = load_rule()
    assert (rule.recipe, rule.encoder_steps) == (SHIPPED.name, SHIPPED.encoder.steps)
    assert len(rule.maxima) == 7 and rule.alert_logit > max(rule.maxima.values())
    assert rule.policy().suspicious_logit <= rule.alert_logit


def test_a_missing_or_foreign_rule_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(LipForensicsError, match="people-cv"):
        load_rule(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LipForensicsError, match="cannot read"):
        load_rule(tmp_path / "bad.json")
    other = dataclasses.replace(CrossFoldRule.load(RULE_FILE), encoder_steps=7)
    with pytest.raises(LipForensicsError, match="7 steps"):
        load_rule(other.save(tmp_path / "other.json"))


def test_a_build_replaces_the_shipped_files_only_when_its_check_passes() -> None:
    assert report_passes(PASSING)[0]
    for change, reason in (
        ({"held_out_genuine_alerts": 1}, "alerts on held-out genuine"),
        ({"demo_genuine_alerts": 1}, "alerts on held-out genuine"),
        ({"demo_manipulated_alerts": 0}, "no alert on the manipulated demo clip"),
        ({"held_out_mean_auc": 0.79}, "AUC 0.7900 < 0.8"),
    ):
        passed, account = report_passes(dataclasses.replace(PASSING, **change))
        assert not passed and reason in account
