"""Thresholds: chosen on genuine logits, they meet their false-alert target when the same
logits are replayed through the real AlertPolicy; the file round-trips and goes stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.metrics import poisson_upper
from calibration.thresholds import (
    calibrate,
    choose_policy,
    face_hours,
    fit_platt,
    fit_probability,
    load_thresholds_for,
    save_thresholds,
    thresholds_path_for,
)
from engines.digest import file_sha256
from engines.method import sigmoid
from errors import CheckpointError
from stream.alerts.policy import count_alerts

STRIDE = 5


def genuine_track(rng: np.random.Generator, windows: int, bursts: int = 0) -> np.ndarray:
    """Correlated genuine window logits (AR(1) around -4), with optional short bursts of
    high logits like the noisy windows a real detector produces on genuine footage."""
    noise = rng.normal(0.0, 0.6, windows)
    logits = np.empty(windows)
    level = 0.0
    for i, step in enumerate(noise):
        level = 0.8 * level + step
        logits[i] = -4.0 + level
    for start in rng.integers(0, windows - 10, bursts):
        logits[start : start + rng.integers(1, 6)] += rng.uniform(2.0, 6.0)
    return logits


def replayed_rate(tracks: list[np.ndarray], thresholds_policy, stride: int = STRIDE) -> float:
    alerts = sum(count_alerts(t, thresholds_policy) for t in tracks)
    return alerts / face_hours(tracks, stride)


def test_two_minutes_of_video_uses_the_conservative_rule_and_raises_no_alert() -> None:
    rng = np.random.default_rng(1)
    tracks = [genuine_track(rng, 600), genuine_track(rng, 400)]  # about 3.4 face-minutes
    policy, evidence = choose_policy(tracks, stride=STRIDE, target_per_hour=1.0)
    assert evidence.rule == "conservative"
    assert evidence.face_hours == pytest.approx(face_hours(tracks, STRIDE))
    assert policy.alert_logit >= max(t.max() for t in tracks) + 0.5
    assert policy.suspicious_logit <= policy.alert_logit
    assert evidence.false_alerts == 0 == replayed_rate(tracks, policy)
    # honest: zero alerts in a few minutes cannot prove 1 per hour
    assert evidence.false_alerts_per_hour_upper95 == pytest.approx(
        poisson_upper(0) / evidence.face_hours
    )
    assert evidence.false_alerts_per_hour_upper95 > 1.0


@pytest.mark.parametrize("target", [1.0, 20.0])
def test_enough_face_hours_use_the_empirical_rule_and_meet_the_target(target: float) -> None:
    rng = np.random.default_rng(2)
    # 4 faces x 1 hour at stride 5 (18000 windows an hour), with noisy bursts
    tracks = [genuine_track(rng, 18000, bursts=300) for _ in range(4)]
    hours = face_hours(tracks, STRIDE)
    assert hours > 3.0 / target
    policy, evidence = choose_policy(tracks, stride=STRIDE, target_per_hour=target)
    assert evidence.rule == "empirical"
    assert evidence.margin == 0.0
    assert replayed_rate(tracks, policy) <= target
    assert evidence.false_alerts_per_hour_upper95 <= target
    # the empirical threshold is below the largest genuine logit: it uses the hysteresis
    assert policy.alert_logit < evidence.max_genuine_logit
    # and it is the lowest such: a little lower breaks the bound
    lower = type(policy)(
        min(policy.suspicious_logit, policy.alert_logit - 0.05),
        policy.alert_logit - 0.05,
        policy.escalate_windows,
        policy.clear_windows,
    )
    alerts_lower = sum(count_alerts(t, lower) for t in tracks)
    assert poisson_upper(alerts_lower) / hours > target


def test_hysteresis_windows_follow_the_stride() -> None:
    rng = np.random.default_rng(3)
    tracks = [genuine_track(rng, 300)]
    fine, _ = choose_policy(tracks, stride=5)
    coarse, _ = choose_policy(tracks, stride=25)
    assert (fine.escalate_windows, fine.clear_windows) == (3, 10)
    assert (coarse.escalate_windows, coarse.clear_windows) == (1, 2)


def test_platt_fit_recovers_a_known_map_and_lowers_calibration_error() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(0.0, 4.0, 20000)
    labels = rng.random(logits.size) < sigmoid(0.5 * logits - 1.0)  # true map
    scale, bias = fit_platt(logits, labels)
    assert scale == pytest.approx(0.5, abs=0.03)
    assert bias == pytest.approx(-1.0, abs=0.06)
    fit = fit_probability([logits[~labels]], [logits[labels]])
    assert fit.after.ece < 0.02 < fit.before.ece


def test_platt_fit_stays_finite_on_separable_data() -> None:
    scale, bias = fit_platt(np.array([-3.0, -2.0, 2.0, 3.0]), np.array([0, 0, 1, 1]))
    assert np.isfinite([scale, bias]).all()
    assert 0 < sigmoid(scale * 3.0 + bias) < 1


def make_thresholds(weights: Path, tracks: list[np.ndarray], fakes: list[np.ndarray]):
    thresholds, _ = calibrate(tracks, fakes, stride=STRIDE, weights_sha256=file_sha256(weights))
    return thresholds


def test_saved_thresholds_load_next_to_the_weights_and_detect_stale_files(tmp_path) -> None:
    rng = np.random.default_rng(5)
    weights = tmp_path / "detector.pth"
    weights.write_bytes(b"weights v1")
    assert load_thresholds_for(weights) is None
    tracks = [genuine_track(rng, 500)]
    fakes = [genuine_track(rng, 100) + 9.0]
    thresholds = make_thresholds(weights, tracks, fakes)
    path = save_thresholds(thresholds, weights)
    assert path == tmp_path / "detector.thresholds.json" == thresholds_path_for(weights)
    document = json.loads(path.read_text())
    assert document["format"] == "lipforensics-thresholds"
    assert set(document) >= {"weights_sha256", "policy", "probability", "evidence", "stride"}

    loaded = load_thresholds_for(weights)
    assert loaded is not None
    assert loaded.policy == thresholds.policy
    assert loaded.evidence == thresholds.evidence
    assert loaded.evidence.fake_faces_alerted == 1
    assert loaded.probability(0.0) == pytest.approx(thresholds.probability(0.0))
    assert str(path) in loaded.describe()

    weights.write_bytes(b"weights v2, retrained")
    with pytest.raises(CheckpointError, match="other weights"):
        load_thresholds_for(weights)
    for broken in ("{not json", "[1, 2]", '{"format": "lipforensics-thresholds"}'):
        path.write_text(broken)
        with pytest.raises(CheckpointError, match="cannot read thresholds"):
            load_thresholds_for(weights)


def test_policy_for_another_stride_keeps_the_hysteresis_duration(tmp_path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"w")
    rng = np.random.default_rng(6)
    thresholds = make_thresholds(weights, [genuine_track(rng, 200)], [np.full(50, 5.0)])
    assert thresholds.policy_for(STRIDE) == thresholds.policy
    coarse = thresholds.policy_for(25)
    assert (coarse.escalate_windows, coarse.clear_windows) == (1, 2)
    assert coarse.alert_logit == thresholds.policy.alert_logit


def test_without_fakes_the_probability_map_is_the_plain_sigmoid() -> None:
    rng = np.random.default_rng(8)
    thresholds, fit = calibrate([genuine_track(rng, 300)], [], stride=STRIDE, weights_sha256="0")
    assert fit is None
    assert (thresholds.scale, thresholds.bias) == (1.0, 0.0)
    assert thresholds.evidence.fake_faces == 0 and thresholds.evidence.ece_sigmoid is None
    assert thresholds.probability(2.0) == pytest.approx(float(sigmoid(2.0)))


def test_genuine_suspicious_share_is_measured() -> None:
    rng = np.random.default_rng(7)
    tracks = [genuine_track(rng, 20000, bursts=300)]
    policy, evidence = choose_policy(tracks, stride=STRIDE)
    assert 0.0 < evidence.suspicious_share < 0.01
    assert policy.suspicious_logit == pytest.approx(np.quantile(tracks[0], 0.999), abs=0.5)


def test_bad_calibration_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one genuine"):
        choose_policy([[]], stride=STRIDE)
    with pytest.raises(ValueError, match="both genuine and fake"):
        fit_platt(np.array([1.0, 2.0]), np.array([0, 0]))


def test_thresholds_record_the_landmark_network_their_crops_came_from(tmp_path) -> None:
    """Files written before the lite landmark network existed read as the full network's;
    `run` and `serve` warn when the live network is another (commands/live.py)."""
    from commands.live import landmarks_mismatch

    rng = np.random.default_rng(6)
    weights = tmp_path / "detector.pth"
    weights.write_bytes(b"weights")
    tracks = [genuine_track(rng, 500)]
    thresholds, _ = calibrate(
        tracks, [], stride=STRIDE, weights_sha256=file_sha256(weights), landmarks="lite"
    )
    path = save_thresholds(thresholds, weights)
    assert json.loads(path.read_text())["landmarks"] == "lite"
    loaded = load_thresholds_for(weights)
    assert loaded is not None and loaded.landmarks == "lite"
    assert landmarks_mismatch(loaded, "lite") is None
    assert "calibrate --landmarks full" in landmarks_mismatch(loaded, "full")
    assert landmarks_mismatch(None, "lite") is None  # uncalibrated: said otherwise

    document = json.loads(path.read_text())
    del document["landmarks"]
    path.write_text(json.dumps(document))
    older = load_thresholds_for(weights)
    assert older is not None and older.landmarks == "full"
    assert "calibrate --landmarks lite" in landmarks_mismatch(older, "lite")


def test_with_a_fitted_map_no_window_reads_clear_at_even_odds_or_above() -> None:
    """Genuine logits around -4 and fakes that overlap them (around +1): the genuine 99.9th
    percentile lies above where the fitted map reads 0.5, so SUSPICIOUS moves down to it,
    and the evidence counts the genuine windows that now read SUSPICIOUS."""
    rng = np.random.default_rng(9)
    genuine = [genuine_track(rng, 3000, bursts=40)]
    fakes = [genuine_track(rng, 600) + 5.0]
    policy, evidence = choose_policy(genuine, stride=STRIDE)
    thresholds, fit = calibrate(genuine, fakes, stride=STRIDE, weights_sha256="0")
    even_odds = -fit.bias / fit.scale
    assert even_odds < policy.suspicious_logit  # the case the rule is for
    assert thresholds.policy.suspicious_logit == pytest.approx(even_odds)
    assert thresholds.probability(thresholds.policy.suspicious_logit) == pytest.approx(0.5)
    assert thresholds.policy.alert_logit == policy.alert_logit  # alerts unchanged
    assert thresholds.evidence.suspicious_share > evidence.suspicious_share
    expected = np.mean(genuine[0] >= even_odds)
    assert thresholds.evidence.suspicious_share >= expected  # hysteresis holds some longer
