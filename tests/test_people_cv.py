"""The people cross-validation without training: its folds never let a held-out person into
training or calibration, it shares build-demo's cached versions, its report counts alerts
and AUCs right on known logits, its saved folds are reused only for the same recipe, the
encoder's camera augmentation does what it says, and the command refuses bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from commands.cli import main
from stream.alerts.policy import PolicyConfig
from training.crop_augment import (
    Augmentation,
    jittered,
    jpeg,
    relit,
    repeated_frames,
    rescaled,
    slowed,
)
from training.cv_folds import CALIBRATION_ORDER, fold_for
from training.cv_recipes import (
    AUGMENTED,
    DIVERSE,
    PACED,
    PAIRED,
    RECIPES,
    SHAKEN,
    SHIPPED,
    STEADY,
    TODAY,
    VARIED,
    WIDE,
)
from training.cv_results import KINDS, FoldResult, held_out_result, markdown_table
from training.demo_detector import DEMO_CONFIG, TRAIN_KINDS
from training.demo_encoder import EncoderConfig
from training.demo_people import PEOPLE
from training.demo_results import GENUINE, ScoredVideo
from training.finetune_config import FinetuneConfig
from training.fold_training import (
    cv_versions,
    slowed_copies,
    swap_donor,
    variant_folders,
)
from training.people_cv import save_result, saved_result

EVERYONE = [p.key for p in PEOPLE]
POLICY = PolicyConfig(suspicious_logit=5.0, alert_logit=10.0, escalate_windows=3)


@pytest.mark.parametrize("calibrators", [1, 2])
def test_each_person_is_held_out_from_training_and_calibration(calibrators) -> None:
    for person in EVERYONE:
        fold = fold_for(person, EVERYONE, calibrators)
        assert fold.held_out == person
        assert person not in fold.train and person not in fold.calibrate
        assert len(fold.calibrate) == calibrators
        assert not set(fold.train) & set(fold.calibrate)
        assert {person, *fold.train, *fold.calibrate} == set(EVERYONE)
        assert set(fold.calibrate) <= set(CALIBRATION_ORDER)


def test_p5_calibrates_unless_held_out() -> None:
    assert fold_for("P1", EVERYONE).calibrate == ("P5",)
    assert fold_for("P5", EVERYONE).calibrate == ("P6",)
    assert fold_for("P6", EVERYONE, 2).calibrate == ("P5", "P7")


def test_a_recipe_picks_its_calibration_person_from_those_with_perturbed_versions() -> None:
    assert AUGMENTED.fold("P1", EVERYONE) == fold_for("P1", EVERYONE)
    reordered = replace(AUGMENTED, calibration_order=("P7", "P6", "P5"))
    assert reordered.fold("P1", EVERYONE).calibrate == ("P7",)
    assert "P5" in reordered.fold("P1", EVERYONE).train
    assert reordered.fold("P7", EVERYONE).calibrate == ("P6",)
    with pytest.raises(ValueError, match="only P5, P6, P7 can calibrate"):
        replace(AUGMENTED, calibration_order=("P2",))


def test_a_fold_that_cannot_be_made_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown person"):
        fold_for("P9", EVERYONE)
    with pytest.raises(ValueError, match="calibrators"):
        fold_for("P5", EVERYONE, len(CALIBRATION_ORDER))
    with pytest.raises(ValueError, match="no one to train"):
        fold_for("P5", ["P5", "P6"])


def test_every_person_gets_every_manipulation() -> None:
    for person in PEOPLE:
        versions = cv_versions(person)
        fakes = {v.kind for v in versions if v.label == 1}
        assert fakes == set(KINDS)
        perturbed = {v.kind for v in versions if v.label == 0} - {GENUINE}
        assert bool(perturbed) == (person.key in CALIBRATION_ORDER)
        assert swap_donor(person.key) != person.key


def test_today_is_build_demos_recipe_and_each_candidate_changes_one_thing() -> None:
    assert TODAY.train_kinds == TRAIN_KINDS and TODAY.model == DEMO_CONFIG
    assert TODAY.encoder == EncoderConfig() and TODAY.finetune == FinetuneConfig()
    assert TODAY.calibrators == 1 and not TODAY.encoder.augmentation.active
    assert AUGMENTED.encoder.augmentation.active
    assert list(RECIPES) == [
        *("today", "augmented", "steady", "wide", "varied", "paced", "paired", "shaken"),
        "diverse",
    ]
    # steady: augmented without stutter in training; wide: augmented, a wider encoder
    assert STEADY.train_kinds == tuple(k for k in TRAIN_KINDS if k != "stutter")
    same = {"name": "augmented", "description": AUGMENTED.description}
    assert replace(STEADY, train_kinds=TRAIN_KINDS, **same) == AUGMENTED
    assert replace(WIDE, model=DEMO_CONFIG, **same) == AUGMENTED
    assert WIDE.model.trunk_widths == tuple(2 * w for w in DEMO_CONFIG.trunk_widths)
    assert WIDE.model.tcn_hidden == DEMO_CONFIG.tcn_hidden
    # varied: augmented, two versions of each training manipulation
    assert replace(VARIED, fake_variants=1, **same) == AUGMENTED
    # paced: augmented, with 10-20 fps sources for the encoder's repeats and the head
    assert PACED.slowed_fps == (10.0, 20.0)
    assert PACED.encoder.augmentation.repeat_fps == (10.0, 20.0)
    unpaced = replace(AUGMENTED.encoder.augmentation, repeat_fps=(15.0, 15.0))
    assert AUGMENTED.encoder.augmentation == unpaced and AUGMENTED.slowed_fps is None
    assert replace(PACED, encoder=AUGMENTED.encoder, slowed_fps=None, **same) == AUGMENTED
    # paired: augmented, with the encoder's batches in genuine/manipulated pairs
    assert PAIRED.encoder.paired and not AUGMENTED.encoder.paired
    assert replace(PAIRED, encoder=AUGMENTED.encoder, **same) == AUGMENTED
    # shaken: paired, with whole-window jitter in half the encoder's windows
    assert SHAKEN.encoder.augmentation.jitter == 0.5 and not AUGMENTED.encoder.augmentation.jitter
    unshaken = replace(SHAKEN.encoder.augmentation, jitter=0.0)
    assert replace(SHAKEN.encoder, augmentation=unshaken) == PAIRED.encoder
    # diverse: paired, with P7 calibrating and P5 training
    assert DIVERSE.fold("P1", EVERYONE).calibrate == ("P7",)
    assert replace(DIVERSE, calibration_order=CALIBRATION_ORDER, **same) == replace(PAIRED, **same)
    assert TODAY.with_steps(7).encoder.steps == 7
    # the shipped recipe: augmented, 4000 steps (people-cv's --help names the figure)
    assert AUGMENTED.with_steps(4000) == SHIPPED


def scored(kind: str, windows: list[float], recording: str = "a") -> ScoredVideo:
    logits = np.asarray(windows, np.float32)
    return ScoredVideo(
        "P7", recording, kind, int(kind != GENUINE), 25 * len(logits), logits, logits
    )


def held_out_videos(genuine: list[float]) -> list[ScoredVideo]:
    """One recording: ``genuine`` window logits, every manipulation far above them except
    ``swap``, which is indistinguishable."""
    fakes = [scored(kind, [20.0] * 6) for kind in KINDS if kind != "swap"]
    return [scored(GENUINE, genuine), *fakes, scored("swap", genuine)]


def fold_result(genuine: list[float], recipe: str = "today") -> FoldResult:
    fold = fold_for("P7", EVERYONE)
    return held_out_result(
        recipe,
        fold,
        held_out_videos(genuine),
        POLICY,
        TRAIN_KINDS,
        (8.0, 0.7),
        [np.array([1.0, 8.0])],
        1,
    )


def test_a_fold_reports_the_held_out_persons_logits_alerts_and_aucs() -> None:
    quiet = fold_result([-3.0, -1.0, 2.0, 0.0, -2.0, 1.0])
    assert quiet.max_genuine_logit == 2.0 and quiet.genuine_alerts == 0
    assert quiet.margin == pytest.approx(8.0)
    assert quiet.auc == {"freeze": 1.0, "shift": 1.0, "stutter": 1.0, "flicker": 1.0, "swap": 0.5}
    assert quiet.alerted == {"freeze": 1, "shift": 1, "stutter": 1, "flicker": 1, "swap": 0}
    assert quiet.calibrated_on == ["P5"] and "P7" not in quiet.trained_on
    assert quiet.held_out_windows["genuine"] == [[-3.0, -1.0, 2.0, 0.0, -2.0, 1.0]]
    assert quiet.held_out_windows["freeze"] == [[20.0] * 6]
    assert quiet.calibration_windows == [[1.0, 8.0]]
    loud = fold_result([-3.0, 12.0, 12.0, 12.0, -2.0, 1.0])
    assert loud.genuine_alerts == 1 and loud.margin == pytest.approx(-2.0)
    assert loud.alerted["swap"] == 1


def test_the_table_puts_recipes_side_by_side_and_sums_them_up() -> None:
    results = [fold_result([0.0] * 6), fold_result([12.0] * 6, "augmented")]
    table = markdown_table(results, ["today", "augmented"]).splitlines()
    assert len(table) == 2 + 2 + 2
    assert "| P7 | today | P5 | +10.00 | +0.00 | 0 |" in table[2]
    assert table[3].startswith("| P7 | augmented |")
    assert "1 of 1 folds" in table[5] and "smallest margin -2.00" in table[5]
    assert "4 of 5" in table[4]  # manipulated recordings alerted


def test_a_recipes_key_names_what_differs_from_the_defaults() -> None:
    assert json.loads(TODAY.key())["encoder"] == {}  # EncoderConfig() as it is
    shaken = json.loads(SHAKEN.key())["encoder"]
    assert shaken == {"paired": True, "augmentation": {**shaken["augmentation"], "jitter": 0.5}}
    assert "description" not in json.loads(TODAY.key())
    assert replace(TODAY, description="reworded").key() == TODAY.key()
    assert len({recipe.key() for recipe in RECIPES.values()}) == len(RECIPES)
    assert TODAY.with_steps(7).key() != TODAY.key()


def test_a_saved_fold_is_reused_only_for_the_same_recipe_and_seed(tmp_path) -> None:
    result = fold_result([0.0] * 6)
    path = tmp_path / "today_P7.json"
    save_result(path, TODAY, 0, result)
    assert saved_result(path, TODAY, 0) == result
    assert saved_result(path, TODAY, 1) is None
    assert saved_result(path, TODAY.with_steps(5), 0) is None
    path.write_text("{not json")
    assert saved_result(path, TODAY, 0) is None


def test_15_fps_repeats_show_the_latest_capture() -> None:
    frames = np.arange(10, 60)
    for phase in (0.0, 0.7, 1.6):
        shown = repeated_frames(frames, phase)
        assert np.all((shown <= frames) & (shown >= frames - 1))
        assert np.all(np.diff(shown) >= 0)
        # 15 of every 25 frames are new captures
        assert len(np.unique(shown[:25])) in (14, 15, 16)


def test_a_slower_source_repeats_frames_within_each_run() -> None:
    frames = np.arange(100)
    for fps in (10.0, 12.0, 20.0):
        shown = repeated_frames(frames, 0.4, 25 / fps)
        assert np.all(shown <= frames) and np.all(np.diff(shown) >= 0)
        assert abs(len(np.unique(shown)) - fps * 4) <= 1  # fps new captures a second
    crops = np.arange(40, dtype=np.uint8)[:, None, None].repeat(4, 1).repeat(4, 2)
    runs = [(0, 15), (20, 40)]
    copy = slowed(crops, runs, 12.0, 0.0)[:, 0, 0].astype(int)
    for start, stop in runs:  # a run never shows a frame from before its start
        assert np.all(copy[start:stop] >= start) and np.all(
            copy[start:stop] <= np.arange(start, stop)
        )
        assert len(np.unique(copy[start:stop])) < stop - start
    assert np.array_equal(copy[15:20], np.arange(15, 20))  # outside the runs: as it was


def test_slowed_copies_are_seeded_and_keep_labels() -> None:
    from training.demo_encoder import Crops

    crops = np.arange(50, dtype=np.uint8)[:, None, None].repeat(4, 1).repeat(4, 2)
    video = Crops("v", crops, ((0, 50),), 1)
    first = slowed_copies([video, video], (10.0, 20.0), 3)
    again = slowed_copies([video, video], (10.0, 20.0), 3)
    assert [c.name for c in first] == [c.name for c in again]
    assert all(np.array_equal(a.crops, b.crops) for a, b in zip(first, again, strict=True))
    assert all(c.label == 1 and c.runs == video.runs for c in first)
    assert all(c.name.startswith("v@") and c.name.endswith("fps") for c in first)


def test_a_fixed_source_rate_draws_nothing_more() -> None:
    crops = np.zeros((12, 96, 96), np.uint8)
    fixed, ranged = np.random.default_rng(4), np.random.default_rng(4)
    Augmentation(repeats=1.0).window(crops, 5, fixed)
    Augmentation(repeats=1.0, repeat_fps=(10.0, 20.0)).window(crops, 5, ranged)
    plain = np.random.default_rng(4)
    # a 15 fps window's draws: repeats?, the phase, then scale?, lighting?, compression?
    plain.random(), plain.uniform(0, 25 / 15), plain.random(), plain.random(), plain.random()
    assert fixed.random() == plain.random() != ranged.random()


def test_paired_batches_differ_only_where_the_manipulation_does() -> None:
    from training.demo_encoder import Crops, _manipulated_partners, _paired_batch, _window_centres

    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (40, 96, 96), dtype=np.uint8)
    manipulated = frames.copy()
    manipulated[:, 40:60, 30:70] = 0  # the "mouth" of every frame replaced
    videos = [
        Crops("a_genuine", frames, ((0, 40),), 0, source="a"),
        Crops("a_freeze", manipulated, ((0, 40),), 1, source="a"),
        Crops("b_freeze", frames, ((0, 40),), 1, source="b"),  # another recording's
    ]
    partners = _manipulated_partners(videos)
    assert partners == {0: [1]}
    augmentation = AUGMENTED.encoder.augmentation
    windows, labels = _paired_batch(
        videos, _window_centres(videos, 0), partners, 16, augmentation, rng
    )
    assert labels.tolist() == [0.0, 1.0] * 8
    changed = (windows[0::2] != windows[1::2]).numpy()
    assert changed.any(axis=(1, 2, 3, 4)).all()  # each pair differs...
    # ...only around the replaced region (give or take the shift, scaling and JPEG blocks)
    assert not changed[..., :16, :].any() and not changed[..., 80:, :].any()
    lonely = [*videos[:1], replace(videos[1], source="")]
    with pytest.raises(ValueError, match="no manipulated version to pair with: a_genuine"):
        _manipulated_partners(lonely)


def test_variants_come_from_the_next_seeds_folders(tmp_path) -> None:
    folders = variant_folders(tmp_path / "seed3", 3, 2)
    assert folders == [tmp_path / "seed3", tmp_path / "seed4"]


def test_camera_augmentations_change_the_crops_and_stay_uint8() -> None:
    rng = np.random.default_rng(0)
    crops = np.clip(rng.normal(120, 40, (12, 96, 96)), 0, 255).astype(np.uint8)
    window = crops[3:8]
    assert np.array_equal(relit(window, 1.0, np.zeros(2)), window)
    assert np.array_equal(rescaled(window, 1.0), window)
    assert relit(window, 1.5, np.zeros(2)).mean() < window.mean()
    blurred = rescaled(window, 0.4).astype(float)
    assert blurred.std() < window.astype(float).std()
    coded = jpeg(window, 30)
    assert coded.dtype == np.uint8 and not np.array_equal(coded, window)
    assert np.abs(coded.astype(float) - window).mean() < 25
    still = jittered(window, np.zeros((5, 2)), np.ones(5), np.ones(5))
    assert np.array_equal(still, window)
    moved = jittered(
        window, np.array([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]]), np.ones(5), np.ones(5)
    )
    assert np.array_equal(moved[[0, 2, 3, 4]], window[[0, 2, 3, 4]])  # one frame moved...
    assert np.array_equal(moved[1, :, 1:], window[1, :, :-1])  # ...one pixel to the right
    darker = jittered(window, np.zeros((5, 2)), np.ones(5), np.full(5, 0.9))
    assert darker.mean() < window.mean() and darker.dtype == np.uint8
    plain = Augmentation().window(crops, 5, np.random.default_rng(1))
    assert np.array_equal(plain, window)
    every = Augmentation(1.0, 1.0, 1.0, 1.0, jitter=1.0).window(crops, 5, np.random.default_rng(1))
    assert every.shape == window.shape and every.dtype == np.uint8
    assert not np.array_equal(every, window)


def test_the_command_explains_itself_and_refuses_bad_input(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["people-cv", "--help"])
    assert done.value.code == 0
    assert "not a deepfake detector" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["people-cv", "--people", "P1,P9"])
    assert done.value.code == 2
    assert "'P1,P9': expected names from P1" in capsys.readouterr().err
    assert main(["people-cv", "--recipes", "today,best"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --recipes 'today,best'") and "\n" not in error


def group_members(group: int) -> int:
    """How many processes are in process group ``group`` (Linux's /proc)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            count += int(fields[2]) == group  # the fields after the name: state, ppid, pgrp
    return count


def test_an_interrupted_run_stops_its_workers_instead_of_waiting_for_them() -> None:
    """Folds take minutes: Ctrl-C (or SIGTERM through the command line) must end the
    command and its workers now, not after the folds in training."""
    script = (
        "import time\n"
        "from training.people_cv import in_processes\n"
        "in_processes(time.sleep, [(300,), (300,), (300,)], 2, print)\n"
    )
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen([sys.executable, "-c", script], cwd=root, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while group_members(child.pid) < 3 and time.monotonic() < deadline:  # two workers
            time.sleep(0.2)
        assert group_members(child.pid) >= 3, "the workers never started"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while group_members(child.pid) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(child.pid) == 0  # no worker left sleeping
    finally:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
