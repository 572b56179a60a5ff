"""`scan` end to end: real video, real MediaPipe crops, a real (random-weight) network."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from calibration.thresholds import calibrate, save_thresholds
from commands.cli import main
from engines.backends import TorchBackend
from engines.checkpoint import save_checkpoint
from engines.clips import clip_starts, score_clips
from engines.digest import file_sha256
from engines.frames import frame_requests
from engines.method import normalise_crops
from engines.model import LipForensics
from stream.scan.scanner import read_input
from tests.live_support import NARROW, TALKING
from tests.test_model import randomise

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def model() -> LipForensics:
    """Random weights everywhere (not ``narrow_model()``, whose logit hardly moves from clip
    to clip): the clips' logits must differ for the comparisons here to mean anything."""
    return randomise(LipForensics(NARROW), seed=3)


@pytest.fixture(scope="session")
def weights(tmp_path_factory, model) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "scan.pth", model)


@pytest.fixture(scope="session")
def talking_crops() -> np.ndarray:
    return read_input(TALKING).crops


@pytest.fixture(scope="session")
def crops_file(tmp_path_factory, talking_crops) -> Path:
    path = tmp_path_factory.mktemp("crops") / "talking.npy"
    np.save(path, talking_crops)
    return path


def scan(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["scan", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def scan_json(capsys, *argv: str) -> dict:
    code, out, err = scan(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""  # no progress bar, no warnings
    return json.loads(out)


def whole_network_logits(model: LipForensics, crops: np.ndarray, starts: list[int]) -> np.ndarray:
    clips = np.stack([normalise_crops(crops[s : s + 25]) for s in starts])
    with torch.no_grad():
        return model(torch.from_numpy(clips).unsqueeze(1)).numpy()


def test_scan_of_a_real_video_reports_the_papers_clips(capsys, weights, model, talking_crops):
    report = scan_json(capsys, TALKING, "--weights", weights)
    assert report["frames"] == 100 and report["frames_with_face"] == 100
    assert report["clips"] == 4 and report["clip_frames"] == 25 and report["stride"] == 25
    assert report["clip_starts"] == [0.0, 1.0, 2.0, 3.0]
    # the default backend is "auto": ONNX Runtime on a machine without an NVIDIA GPU
    assert report["backend"] == "onnxruntime" and report["weights"] == str(weights)
    assert report["checkpoint_layout"] == "lipforensics" and report["warnings"] == []
    logits = np.array(report["clip_logits"])
    expected = whole_network_logits(model, talking_crops, [0, 25, 50, 75])
    assert np.allclose(logits, expected, rtol=1e-4, atol=1e-6)
    assert report["video_logit"] == pytest.approx(logits.mean())
    assert report["fake_probability"] == pytest.approx(1 / (1 + math.exp(-logits.mean())))
    assert set(report["seconds"]) == {"mouth_crops", "network"}


def test_scan_of_a_crops_file_matches_the_video(capsys, weights, crops_file):
    from_video = scan_json(capsys, TALKING, "--weights", weights, "--backend", "torch")
    from_npy = scan_json(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert from_npy["frames"] == 100 and from_npy["clips"] == 4
    assert from_npy["clip_logits"] == from_video["clip_logits"]


def test_overlapping_clips_give_each_clip_its_own_paper_logit(capsys, weights, crops_file, model):
    report = scan_json(
        capsys, crops_file, "--weights", weights, "--stride", "5", "--backend", "torch"
    )
    starts = list(range(0, 76, 5))
    assert report["clips"] == 16
    assert report["clip_starts"] == pytest.approx([s / 25 for s in starts])
    expected = whole_network_logits(model, np.load(crops_file), starts)
    assert np.allclose(report["clip_logits"], expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(expected) > 1e-3  # the clips really differ


def test_score_clips_encodes_each_frame_once():
    keys, layout = frame_requests([0, 25, 50], 25)
    assert len(keys) == 75  # non-overlapping: no extra work
    keys, layout = frame_requests(list(range(0, 76, 5)), 25)
    # 100 interior-or-end frames once, plus the zero-padded ends of the later clips
    assert len(keys) < 100 + 4 * 16 and layout.shape == (16, 25)
    assert keys[layout[1, 0]] == (5, 2, 0) and keys[layout[0, 5]] == (5, 0, 0)


def test_score_clips_matches_the_whole_network_on_any_starts(model, talking_crops):
    starts = [3, 10, 11, 60]
    logits = score_clips(talking_crops, starts, TorchBackend(model), batch=7)
    expected = whole_network_logits(model, talking_crops, starts)
    assert np.allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_clips_never_cross_a_gap_in_the_face():
    assert clip_starts(((0, 30), (30, 80)), 25) == [0, 30, 55]
    assert clip_starts(((0, 24),), 5) == []


def test_text_summary_lists_clips_and_the_video_score(capsys, weights, crops_file):
    code, out, err = scan(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert code == 0 and err.startswith("thresholds: none calibrated for these weights")
    assert "4 clips of 25 frames, stride 25 (100 of 100 frames" in out
    assert out.count("s  ") >= 4 and "video logit" in out
    # issue 24, row 29: a sigmoid is not called a fake probability, and the level says
    # that it is the alert policy's (a high sigmoid over few clips can stay clear)
    assert "sigmoid " in out and "(not a calibrated fake probability" in out
    assert "fake probability 0" not in out
    assert "live alert policy (uncalibrated thresholds) over the 4 clip(s): highest level" in out
    assert "a level needs 3 clips in a row past its threshold" in out


def test_scan_loads_the_thresholds_calibrated_for_its_weights(capsys, tmp_path, model, crops_file):
    weights = save_checkpoint(tmp_path / "calibrated.pth", model)
    uncalibrated = scan_json(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert uncalibrated["thresholds"] is None
    logits = uncalibrated["clip_logits"]
    # thresholds fitted on this very video's clip logits: it must stay below the alert level
    thresholds, _ = calibrate([logits], [], stride=25, weights_sha256=file_sha256(weights))
    path = save_thresholds(thresholds, weights)

    code, out, err = scan(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert code == 0 and err.startswith(f"thresholds {path}: alert at window logit >= ")
    # thresholds without fakes have no probability map (issue 24, row 29)
    assert "(not a calibrated fake probability" in out and "(calibrated thresholds)" in out
    report = scan_json(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert report["thresholds"] == str(path)
    assert report["level"] != "alert" and report["alerts"] == 0
    assert report["fake_probability"] == pytest.approx(thresholds.probability(np.mean(logits)))

    # a threshold below every clip logit makes the same video alert, once
    low = replace(
        thresholds,
        policy=replace(
            thresholds.policy,
            alert_logit=min(logits) - 1,
            suspicious_logit=min(logits) - 2,
            escalate_windows=2,
        ),
    )
    save_thresholds(low, weights)
    report = scan_json(capsys, crops_file, "--weights", weights, "--backend", "torch")
    assert report["level"] == "alert" and report["alerts"] == 1


def test_a_video_without_a_face_is_a_clear_error(capsys, weights):
    code, out, err = scan(capsys, DATA / "no_face.mp4", "--weights", weights)
    assert code == 2 and out == ""
    assert err.startswith("error: no face found in") and err.count("\n") == 1


def test_too_few_frames_with_a_face_is_a_clear_error(capsys, weights, tmp_path, talking_crops):
    np.save(tmp_path / "short.npy", talking_crops[:24])
    code, _, err = scan(capsys, tmp_path / "short.npy", "--weights", weights)
    assert code == 2 and "no 25 consecutive frames with a face (longest run 24" in err


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("not_video.mp4", b"just some text\n", "cannot read"),
        ("truncated.mp4", TALKING.read_bytes()[:40_000], "cannot read"),
        ("floats.npy", None, "holds float32; expected mouth crops (T, 96, 96) uint8"),
        ("garbage.npy", b"\x93NUMPY garbage", "cannot read"),
    ],
)
def test_bad_inputs_are_one_line_errors(capsys, weights, tmp_path, name, content, expected):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((30, 96, 96), np.float32))
    else:
        path.write_bytes(content)
    code, out, err = scan(capsys, path, "--weights", weights)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and expected in err


def test_missing_weights_and_input_are_named(capsys, tmp_path, weights):
    code, _, err = scan(capsys, TALKING, "--weights", tmp_path / "lipforensics_ff.pth")
    assert code == 2 and "weights file not found" in err and "lipforensics_ff.pth" in err
    code, _, err = scan(capsys, tmp_path / "missing.mp4", "--weights", weights)
    assert code == 2 and "input not found" in err


def test_stride_must_be_positive(capsys, weights):
    with pytest.raises(SystemExit) as caught:
        main(["scan", str(TALKING), "--weights", str(weights), "--stride", "0"])
    assert caught.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_a_scan_of_two_faces_says_only_one_was_scored(capsys, weights):
    code, out, err = scan(capsys, DATA / "two_faces.mp4", "--weights", weights, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["clips"] == 2 and report["frames"] == 50
    crowded = [w for w in report["warnings"] if "more than one face" in w]
    assert len(crowded) == 1
    assert crowded[0].startswith("2 of 2 frames looked at (one a second) show more than one")
    assert err.splitlines() == [f"warning: {crowded[0]}"]


def test_a_scan_of_several_people_scores_every_face(tmp_path):
    """Two people side by side: the top-level fields stay the main face's, and ``faces``
    holds each face's own clips, one on the left and one on the right; the report shows
    them. One person: no ``faces``."""
    from stream.detector import Detector
    from stream.scan.report_html import write_scan_report
    from training.demo_detector import WEIGHTS

    detector = Detector.load(WEIGHTS, backend="onnxruntime")
    try:
        two = detector.scan(Path(__file__).parent / "data" / "two_faces.mp4")
        one = detector.scan(TALKING)
        page = tmp_path / "report.html"
        write_scan_report(
            page, two, probability=detector.probability, policy=detector.policy_for(25)
        )
    finally:
        detector.close()
    assert len(two.faces) == 2 and two.clip_logits
    centres = sorted((face["box"][0] + face["box"][2]) / 2 for face in two.faces)
    assert centres[0] < 0.5 < centres[1]
    for face in two.faces:
        assert len(face["clip_logits"]) == len(face["clip_starts"]) >= 1
        assert face["video_logit"] == pytest.approx(np.mean(face["clip_logits"]))
    assert one.faces == [] and json.loads(json.dumps(two.to_dict()))["faces"] == two.faces
    assert "Every face (2)" in page.read_text()
