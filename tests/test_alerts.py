"""The per-face alert policy: hysteresis in level and time, one alert per sustained run."""

from __future__ import annotations

import json

import pytest

from stream.alerts.policy import AlertPolicy, Level, PolicyConfig, count_alerts

CONFIG = PolicyConfig(suspicious_logit=0.0, alert_logit=2.0, escalate_windows=3, clear_windows=5)
LOW, MID, HIGH = -3.0, 1.0, 4.0


def levels(logits: list[float], config: PolicyConfig = CONFIG) -> list[Level]:
    policy = AlertPolicy(config)
    return [policy.update(logit).level for logit in logits]


def test_single_noisy_window_does_not_flip_the_level() -> None:
    assert levels([LOW] * 10 + [HIGH] + [LOW] * 10) == [Level.CLEAR] * 21
    assert levels([LOW] * 5 + [HIGH, HIGH] + [LOW] * 5) == [Level.CLEAR] * 12


def test_sustained_high_logits_alert_once() -> None:
    policy = AlertPolicy(CONFIG)
    decisions = [policy.update(logit) for logit in [LOW] * 4 + [HIGH] * 30]
    assert [d.alert for d in decisions].count(True) == 1
    first_alert = next(i for i, d in enumerate(decisions) if d.alert)
    assert first_alert == 4 + CONFIG.escalate_windows - 1
    assert decisions[first_alert].previous == Level.CLEAR
    assert all(d.level == Level.ALERT for d in decisions[first_alert:])


def test_clearing_needs_sustained_low_logits() -> None:
    policy = AlertPolicy(CONFIG)
    for _ in range(5):
        policy.update(HIGH)
    # dips shorter than clear_windows keep the alert, and do not re-alert on return
    dips = ([LOW] * (CONFIG.clear_windows - 1) + [HIGH]) * 4
    assert not any(policy.update(logit).alert for logit in dips)
    assert policy.level == Level.ALERT
    history = [policy.update(LOW).level for _ in range(CONFIG.clear_windows)]
    assert history[:-1] == [Level.ALERT] * (CONFIG.clear_windows - 1)
    assert history[-1] == Level.CLEAR


def test_alert_falls_to_suspicious_on_sustained_middle_logits_and_can_alert_again() -> None:
    policy = AlertPolicy(CONFIG)
    logits = [HIGH] * 3 + [MID] * CONFIG.clear_windows + [HIGH] * 3
    decisions = [policy.update(logit) for logit in logits]
    assert decisions[3 + CONFIG.clear_windows - 1].level == Level.SUSPICIOUS
    assert [d.alert for d in decisions].count(True) == 2


def test_sustained_middle_logits_are_suspicious_not_alert() -> None:
    observed = levels([MID] * 20)
    assert observed[:2] == [Level.CLEAR] * 2
    assert set(observed[2:]) == {Level.SUSPICIOUS}


def test_alternating_windows_do_not_flap() -> None:
    observed = levels([HIGH, LOW] * 20)
    assert set(observed) == {Level.CLEAR}
    changes = sum(a != b for a, b in zip(observed, observed[1:], strict=False))
    assert changes == 0


def test_reset_keeps_level_but_needs_fresh_evidence() -> None:
    policy = AlertPolicy(CONFIG)
    for _ in range(3):
        policy.update(HIGH)
    policy.reset()
    assert policy.level == Level.ALERT
    assert not policy.update(HIGH).alert
    assert [policy.update(LOW).level for _ in range(CONFIG.clear_windows)][-1] == Level.CLEAR


def test_count_alerts_counts_entries_into_alert() -> None:
    logits = [HIGH] * 3 + [LOW] * 5 + [HIGH] * 3 + [LOW] + [HIGH] * 3
    assert count_alerts(logits, CONFIG) == 2


def test_levels_serialise_as_lowercase_names() -> None:
    assert [str(level) for level in Level] == ["clear", "suspicious", "alert"]
    assert json.dumps({"level": str(Level.ALERT)}) == '{"level": "alert"}'
    assert Level.CLEAR < Level.SUSPICIOUS < Level.ALERT


def test_bad_config_and_non_finite_logits_are_refused() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        PolicyConfig(suspicious_logit=3.0, alert_logit=2.0)
    with pytest.raises(ValueError, match="at least 1"):
        PolicyConfig(escalate_windows=0)
    with pytest.raises(ValueError, match="finite"):
        AlertPolicy(CONFIG).update(float("nan"))
