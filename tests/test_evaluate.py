"""Evaluation metrics on synthetic scores, and `calibrate` / `evaluate` end to end on the real
fixture clips with a small random-weight network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration.metrics import (
    accuracy_at,
    auc,
    bootstrap_auc,
    plot_reliability,
    plot_roc,
    reliability,
    roc_curve,
)
from calibration.thresholds import load_thresholds_for
from commands.cli import main
from engines.method import sigmoid
from stream.alerts.policy import count_alerts
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING
from training.evaluate import FaceLogits, perturbed_copy, video_seed
from training.perturbations import perturb

DATA = Path(__file__).parent / "data"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def brute_force_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    fakes, reals = scores[labels == 1], scores[labels == 0]
    wins = (fakes[:, None] > reals[None, :]).sum() + 0.5 * (fakes[:, None] == reals[None, :]).sum()
    return wins / (fakes.size * reals.size)


def test_auc_is_the_chance_a_fake_outscores_a_real_ties_counting_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 300).astype(float)  # many ties
    labels = rng.integers(0, 2, 300)
    assert auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels))
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 1, 0, 0])) == 0.0
    with pytest.raises(ValueError, match="at least one real and one fake"):
        auc(np.array([1.0, 2.0]), np.array([1, 1]))


def test_roc_curve_runs_corner_to_corner_and_its_area_is_the_auc() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(labels * 1.0, 1.0).round(1)
    fpr, tpr = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert area == pytest.approx(auc(scores, labels))


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(2)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.r_[np.zeros(n), np.ones(n)].astype(int)
        return rng.normal(labels * 1.0, 1.0), labels

    small = bootstrap_auc(*sample(20), resamples=500)
    large = bootstrap_auc(*sample(500), resamples=500)
    for interval in (small, large):
        assert interval.low <= interval.estimate <= interval.high
        assert interval.level == 0.95
    assert large.high - large.low < 0.5 * (small.high - small.low)
    assert large.low < 0.76 < large.high  # the true AUC of N(1,1) vs N(0,1) is 0.760
    scores, labels = sample(30)
    assert bootstrap_auc(scores, labels, seed=3) == bootstrap_auc(scores, labels, seed=3)


def test_calibration_error_is_near_zero_for_calibrated_and_large_for_overconfident() -> None:
    rng = np.random.default_rng(4)
    probabilities = rng.random(50_000)
    labels = rng.random(probabilities.size) < probabilities
    calibrated = reliability(probabilities, labels)
    assert calibrated.ece < 0.01
    assert calibrated.counts.sum() == probabilities.size
    filled = calibrated.counts > 0
    assert np.allclose(calibrated.frequency[filled], calibrated.confidence[filled], atol=0.03)
    overconfident = reliability(sigmoid(8 * (probabilities - 0.5) * 4), labels)
    assert overconfident.ece > 0.1


def test_accuracy_at_a_threshold() -> None:
    scores = np.array([-2.0, 0.5, 1.0, 3.0])
    assert accuracy_at(scores, np.array([0, 0, 1, 1]), 0.0) == 0.75
    assert accuracy_at(scores, np.array([0, 0, 1, 1]), 1.0) == 1.0


def test_figures_are_written_as_png(tmp_path) -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    scores = rng.normal(labels, 1.0)
    plot_roc({"clean": roc_curve(scores, labels)}, tmp_path / "roc.png", "ROC")
    diagram = reliability(sigmoid(scores), labels)
    plot_reliability({"raw": diagram}, tmp_path / "figs" / "rel.png", "reliability")
    for name in ("roc.png", "figs/rel.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_video_logit_is_the_mean_of_non_overlapping_clips() -> None:
    runs = (np.arange(11, dtype=np.float32), np.array([100.0], np.float32))
    video = FaceLogits(Path("v.mp4"), stride=5, runs=runs, frames=200)
    # windows every 5 frames: clips are every 5th window of each run
    assert video.video_logit() == pytest.approx(np.mean([0, 5, 10, 100]))
    assert video.windows == 12
    with pytest.raises(ValueError, match="does not divide"):
        FaceLogits(Path("v.mp4"), stride=7, runs=runs, frames=200).video_logit()


def test_perturbed_copy_is_lossless_and_keeps_timestamps(tmp_path) -> None:
    source = DATA / "talking_30fps.mp4"
    copy = perturbed_copy(source, "noise", 2, seed=0, folder=tmp_path)
    with VideoFile(source) as video:
        original = list(video.frames())
    with VideoFile(copy) as video:
        written = list(video.frames())
    assert len(written) == len(original)
    assert copy.name == "talking_30fps.noise2.mkv"
    expected = perturb([rgb for _, rgb in original], "noise", 2, seed=video_seed(source, 0))
    for (pts, rgb), (pts_in, _), want in zip(written, original, expected, strict=True):
        assert pts == pytest.approx(pts_in, abs=0.001)
        assert np.array_equal(rgb, want)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory, narrow_weights) -> Path:
    """A copy of the shared narrow checkpoint: `calibrate` writes its thresholds next to it."""
    return Path(shutil.copy(narrow_weights, tmp_path_factory.mktemp("weights") / "small.pth"))


def test_calibrate_then_evaluate_end_to_end_on_real_clips(small_weights, tmp_path, capsys) -> None:
    genuine, fake = TALKING, DATA / "talking_24fps.mp4"
    figure = tmp_path / "reliability.png"
    code = main(
        ["calibrate", "--weights", str(small_weights), "--genuine", str(genuine),
         str(DATA / "no_face.mp4"), "--fake", str(fake), "--reliability", str(figure)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr()
    assert "rule: conservative" in out.out and "no 25 consecutive" in out.err
    assert figure.read_bytes().startswith(PNG_SIGNATURE)
    thresholds = load_thresholds_for(small_weights)
    assert thresholds is not None and thresholds.evidence.genuine_windows == 16
    assert thresholds.evidence.fake_faces == 1

    real_dir, fake_dir = tmp_path / "real", tmp_path / "fake"
    real_dir.mkdir(), fake_dir.mkdir()
    shutil.copy(genuine, real_dir), shutil.copy(fake, fake_dir)
    roc = tmp_path / "roc.png"
    code = main(
        ["evaluate", "--weights", str(small_weights), "--real", str(real_dir), "--fake",
         str(fake_dir), "--roc", str(roc), "--perturb", "pixelation", "--levels", "2", "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"]["real"] == report["clean"]["fake"] == 1
    assert report["clean"]["threshold"] == thresholds.policy.alert_logit
    assert report["clean"]["auc"] in (0.0, 1.0)  # one real vs one fake video
    low, high = report["clean"]["auc_ci95"]
    assert low <= report["clean"]["auc"] <= high
    assert report["robustness"]["pixelation"]["2"]["parameter"] == 3
    assert roc.read_bytes().startswith(PNG_SIGNATURE)


def test_calibrate_on_crops_of_the_lite_landmark_network(narrow_weights, tmp_path, capsys):
    weights = Path(shutil.copy(narrow_weights, tmp_path / "lite.pth"))
    code = main(
        ["calibrate", "--weights", str(weights), "--genuine", str(TALKING), "--landmarks", "lite"]
    )
    assert code == 0 and "rule: conservative" in capsys.readouterr().out
    thresholds = load_thresholds_for(weights)
    assert thresholds is not None and thresholds.landmarks == "lite"
    assert thresholds.evidence.genuine_windows == 16  # the same frames, every one with a face


def test_calibrated_thresholds_raise_no_alert_on_their_genuine_windows(small_weights) -> None:
    from stream.detector import Detector
    from training.evaluate import score_video

    backend = Detector.load(small_weights, backend="torch", calibrated=False).backend
    thresholds = load_thresholds_for(small_weights)
    if thresholds is None:  # run alone: calibrate first
        main(["calibrate", "--weights", str(small_weights), "--genuine", str(TALKING)])
        thresholds = load_thresholds_for(small_weights)
    video = score_video(TALKING, backend, thresholds.stride)
    assert sum(count_alerts(run, thresholds.policy) for run in video.runs) == 0


def test_bad_inputs_give_one_line_errors(small_weights, tmp_path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--weights", str(small_weights), "--real", str(empty),
                 "--fake", str(empty)]) == 2  # fmt: skip
    assert "no videos in" in capsys.readouterr().err
    assert main(["calibrate", "--weights", str(tmp_path / "missing.pth"),
                 "--genuine", str(TALKING)]) == 2  # fmt: skip
    assert capsys.readouterr().err.startswith("error: ")


def test_robustness_table_has_one_row_per_type_and_marks_missing_cells() -> None:
    from commands.evaluate import format_report

    clean = {"auc": 0.9, "auc_ci95": [0.8, 1.0], "accuracy": 0.85, "threshold": 0.0,
             "real": 4, "fake": 4, "skipped": []}  # fmt: skip
    report = {
        "clean": clean,
        "threshold_source": "logit 0 (uncalibrated)",
        "robustness": {
            "blur": {"1": {"auc": 0.8}, "5": {"auc": 0.6}},
            "noise": {"1": {"auc": 0.7}, "5": {"auc": None, "error": "no face"}},
        },
    }
    lines = format_report(report, [1, 5]).splitlines()
    assert "video-level AUC 0.9000 (95% bootstrap CI 0.8000 - 1.0000)" in lines
    assert lines[-2].split() == ["blur", "0.800", "0.600", "0.700"]
    assert lines[-1].split() == ["noise", "0.700", "n/a", "0.700"]
