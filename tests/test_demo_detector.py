"""The shipped demo detector: small, calibrated, checked on people it never saw, and it
separates the demo clips end to end (real video -> real MediaPipe -> real crops -> the real
network -> the alert policy with its calibrated thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from calibration.policy import count_alerts
from calibration.thresholds import load_thresholds_for
from commands.demo import ClipPrinter
from training.demo_detector import (
    DEMO_CONFIG,
    DEMO_GENUINE,
    DEMO_MANIPULATED,
    DISCLAIMER,
    HELD_OUT_KINDS,
    MIN_AUC,
    REPORT,
    ROOT,
    WEIGHTS,
)
from training.demo_people import HELD_OUT, PEOPLE
from training.demo_results import markdown_tables

MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def loaded():
    from engines.checkpoint import load_checkpoint

    return load_checkpoint(WEIGHTS)


@pytest.fixture(scope="module")
def thresholds():
    found = load_thresholds_for(WEIGHTS)  # raises if calibrated for other weights
    assert found is not None, "training/demo/ lacks the demo detector's thresholds file"
    return found


@pytest.fixture(scope="module")
def mouths() -> dict:
    """Mouth crops of both demo clips (real MediaPipe, reference smoothing), read once."""
    from stream.scan import read_input

    found = {path: read_input(path) for path in (DEMO_GENUINE, DEMO_MANIPULATED)}
    for crops in found.values():
        assert len(crops.crops) >= 0.99 * crops.frames  # a face in (nearly) every frame
    return found


def window_logits(mouths, path, loaded, stride: int) -> np.ndarray:
    """Logits of the 25-frame windows every ``stride`` frames of a demo clip, as `scan`
    scores them (frame-once encoding)."""
    from engines.backends import TorchBackend
    from engines.clips import clip_starts, score_clips

    crops = mouths[path]
    starts = clip_starts(crops.runs, stride)
    return score_clips(crops.crops, starts, TorchBackend(loaded.model))


def test_the_demo_detector_is_small_narrow_and_labelled(loaded) -> None:
    assert WEIGHTS.stat().st_size <= MAX_BYTES
    assert loaded.config == DEMO_CONFIG and loaded.layout == "lipforensics"
    report = json.loads(REPORT.read_text())
    assert report["disclaimer"] == DISCLAIMER
    assert report["weights_bytes"] == WEIGHTS.stat().st_size


def test_the_shipped_build_passed_its_held_out_check_on_people_it_never_saw() -> None:
    report = json.loads(REPORT.read_text())
    roles = {person.key: person.role for person in PEOPLE}
    assert {p["person"]: p["role"] for p in report["people"]} == roles
    held_out = [p for p in report["people"] if p["role"] == HELD_OUT]
    assert len(held_out) >= 2 and all(p["genuine_alerts"] == 0 for p in held_out)
    never_trained = [m for m in report["manipulations"] if not m["trained_on"]]
    assert {m["kind"] for m in never_trained} == set(HELD_OUT_KINDS)
    assert all(m["auc"] >= MIN_AUC for m in never_trained)
    assert report["demo_genuine_alerts"] == 0 and report["demo_manipulated_alerts"] >= 1


def test_the_docs_show_the_shipped_builds_tables() -> None:
    report = json.loads(REPORT.read_text())
    docs = (ROOT / "docs" / "demo_detector.md").read_text()
    assert markdown_tables(report["people"], report["manipulations"]) in docs


def test_the_genuine_demo_clip_raises_no_alert(mouths, loaded, thresholds) -> None:
    logits = window_logits(mouths, DEMO_GENUINE, loaded, thresholds.stride)
    assert len(logits) >= 20
    assert count_alerts(logits, thresholds.policy) == 0
    assert logits.max() < thresholds.policy.alert_logit


def test_the_manipulated_demo_clip_raises_an_alert(mouths, loaded, thresholds) -> None:
    logits = window_logits(mouths, DEMO_MANIPULATED, loaded, thresholds.stride)
    assert count_alerts(logits, thresholds.policy) >= 1
    genuine = window_logits(mouths, DEMO_GENUINE, loaded, 25)
    manipulated = window_logits(mouths, DEMO_MANIPULATED, loaded, 25)
    assert np.median(manipulated) > np.max(genuine)  # the clips separate clip by clip too


def test_the_demo_command_plays_both_clips_through_the_live_pipeline() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_stream.py"), "demo", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert DISCLAIMER in done.stdout
    assert "p(fake) is the calibrated probability map" in done.stdout
    summaries = [line for line in done.stdout.splitlines() if line.endswith("as expected")]
    assert len(summaries) == 2
    assert "no alert" in summaries[0] and "ALERT at" in summaries[1]


def test_the_demo_prints_the_probability_beside_the_logit(capsys) -> None:
    printer = ClipPrinter("genuine")
    event = {"type": "verdict", "pts": [0.0, 1.0], "logit": 13.2, "probability": 0.31}
    printer.send({**event, "level": "clear"})
    assert "logit +13.20  p(fake) 0.31  clear" in capsys.readouterr().out
