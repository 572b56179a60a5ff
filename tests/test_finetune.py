"""Feature cache and fine-tuning: exact clip features, real learning, split by video,
determinism, and the commands end to end with checkpoints that round-trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from calibration.metrics import auc
from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.clips import clip_starts
from engines.method import normalise_crops
from engines.model import LipForensics, ModelConfig, TemporalHead
from tests.live_support import NARROW, TALKING, narrow_model
from training.features import (
    GRID,
    VideoFeatures,
    clip_features,
    encode_video,
    requests,
)
from training.finetune import (
    FinetuneConfig,
    LabelledVideo,
    make_clips,
    predict,
    split_by_video,
    train_head,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Real mouth crops of the bundled talking clip (MediaPipe, once per module)."""
    from stream.faces.reader import extract_mouth_crops

    return extract_mouth_crops(TALKING).crops


@pytest.fixture(scope="module")
def model() -> LipForensics:
    return narrow_model()


def test_cached_clip_features_give_the_whole_networks_logit(crops, model) -> None:
    runs = ((0, 60), (60, len(crops)))  # two runs: clips never cross the boundary
    features = encode_video(model.encoder, crops, runs)
    starts = clip_starts(runs, GRID)
    assert starts[:2] == [0, 5] and 60 in starts
    with torch.no_grad():
        for start in starts:
            clip = torch.from_numpy(normalise_crops(crops[start : start + 25]))[None, None]
            whole = model(clip).item()
            cached = model.head(torch.from_numpy(clip_features(features, start))[None]).item()
            assert cached == pytest.approx(whole, rel=1e-5, abs=1e-6)


def test_edge_variants_are_computed_only_for_clips_on_the_grid() -> None:
    wanted = requests(((0, 60),), grid=5)
    interior = [key for key, slot in wanted if slot == 0]
    assert len(interior) == 60 and interior[:3] == [(0, 2, 0), (1, 1, 0), (2, 0, 0)]
    # clips start at 0, 5, ..., 35: frames 0..1 / 5..6 ... get left variants
    assert ((5, 2, 0), 1) in wanted and ((6, 1, 0), 2) in wanted
    assert ((7, 2, 0), 1) not in wanted
    assert len(wanted) - 60 == 4 * 8  # 8 clips, 4 edge frames each, none shared


def test_feature_files_round_trip(tmp_path: Path, crops, model) -> None:
    features = encode_video(model.encoder, crops[:40], ((0, 40),))
    saved = VideoFeatures(features, np.arange(40) / 25, ((0, 40),), 40, GRID, "clip.mp4", "abc")
    loaded = VideoFeatures.load(saved.save(tmp_path / "clip.features.npz"))
    assert loaded.features.dtype == np.float16 and loaded.runs == ((0, 40),)
    np.testing.assert_allclose(loaded.features, features, rtol=1e-3, atol=1e-3)
    assert (loaded.grid, loaded.source, loaded.weights) == (GRID, "clip.mp4", "abc")


def synthetic_videos(count: int, seed: int, dim: int = 16) -> list[LabelledVideo]:
    """Features of ``count`` real and ``count`` fake videos of 100 frames: real ones drift
    smoothly (a moving mouth), fake ones jitter from frame to frame (a flickering mouth)."""
    rng = np.random.default_rng(seed)
    videos = []
    for index in range(2 * count):
        label = index % 2
        walk = np.cumsum(rng.normal(size=(100, dim)), axis=0)
        walk = (walk - walk.mean(axis=0)) / walk.std(axis=0)
        if label:
            walk = walk + rng.normal(scale=1.0, size=walk.shape)
        features = np.repeat(walk[:, None], 5, axis=1).astype(np.float32)
        videos.append(LabelledVideo(f"v{index}", features, ((0, 100),), label))
    return videos


def test_split_is_by_video_with_both_classes_in_validation() -> None:
    videos = synthetic_videos(5, seed=0)
    train, val = split_by_video(videos, val_share=0.2, seed=3)
    assert {v.name for v in train}.isdisjoint({v.name for v in val})
    assert len(train) + len(val) == len(videos)
    assert {v.label for v in val} == {0, 1} and {v.label for v in train} == {0, 1}
    assert [v.name for v in split_by_video(videos, 0.2, 3)[1]] == [v.name for v in val]
    with pytest.raises(ValueError, match="two fake"):
        split_by_video([v for v in videos if v.label == 0] + videos[1:2], 0.2, 0)


def train_tiny(seed: int) -> tuple[TemporalHead, object, list[LabelledVideo]]:
    torch.manual_seed(seed)
    head = TemporalHead(ModelConfig(trunk_widths=(16,), tcn_hidden=8, tcn_levels=2))
    train = synthetic_videos(8, seed=1)
    val = synthetic_videos(2, seed=2)
    config = FinetuneConfig(epochs=6, patience=6, batch_size=16, learning_rate=3e-3, seed=seed)
    return head, train_head(head, train, val, config), train


def test_fine_tuning_lowers_the_loss_and_beats_chance_on_held_out_videos() -> None:
    head, result, _train = train_tiny(seed=0)
    losses = [loss for loss, _auc in result.history]
    assert losses[-1] < 0.7 * losses[0]
    held_out = synthetic_videos(3, seed=7)  # never seen in training or validation
    clips, labels = make_clips(held_out, 25)
    assert auc(predict(head, clips), labels) > 0.9


def test_fine_tuning_is_deterministic_for_a_seed() -> None:
    first, result_a, _ = train_tiny(seed=4)
    second, result_b, _ = train_tiny(seed=4)
    assert result_a.history == result_b.history
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_stream.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def feature_folders(tmp_path_factory, model) -> tuple[Path, Path, Path]:
    """Two real and two fake .npy crop 'videos' (the talking clip and frozen-mouth copies),
    a narrow checkpoint, and their features from the `features` command."""
    from stream.faces.reader import extract_mouth_crops

    root = tmp_path_factory.mktemp("finetune")
    weights = save_checkpoint(root / "start.pth", model)
    crops = extract_mouth_crops(TALKING).crops
    videos = root / "videos"
    videos.mkdir()
    for half, part in enumerate((crops[:50], crops[50:])):
        np.save(videos / f"real{half}.npy", part)
        np.save(videos / f"fake{half}.npy", np.repeat(part[:1], len(part), axis=0))
    for kind in ("real", "fake"):
        done = run_cli("features", *map(str, sorted(videos.glob(f"{kind}*.npy"))),
                       "--weights", str(weights), "--out", str(root / kind))  # fmt: skip
        assert done.returncode == 0, done.stderr
    return weights, root / "real", root / "fake"


def test_features_command_is_resumable(feature_folders) -> None:
    weights, real, _fake = feature_folders
    assert sorted(p.name for p in real.iterdir()) == [
        "real0.features.npz",
        "real1.features.npz",
    ]
    again = run_cli("features", str(real.parent / "videos" / "real0.npy"),
                    "--weights", str(weights), "--out", str(real))  # fmt: skip
    assert again.returncode == 0 and "cached, skipped" in again.stdout


def test_finetune_command_writes_a_checkpoint_every_command_loads(feature_folders, tmp_path):
    weights, real, fake = feature_folders
    out = tmp_path / "tuned.pth"
    done = run_cli("finetune", "--weights", str(weights), "--real", str(real), "--fake",
                   str(fake), "--out", str(out), "--epochs", "3", "--batch-size", "4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "val AUC" in done.stdout and "kept epoch" in done.stdout
    start, tuned = load_checkpoint(weights), load_checkpoint(out)
    assert tuned.layout == "lipforensics" and tuned.config == NARROW
    before, after = start.model.state_dict(), tuned.model.state_dict()
    for key in before:
        if key.startswith(("trunk.", "frontend3D.")):
            assert torch.equal(before[key], after[key]), key  # the encoder stayed frozen
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("tcn."))
    # round trip: saving the loaded model again gives the same weights
    again = load_checkpoint(save_checkpoint(tmp_path / "again.pth", tuned.model))
    for key, value in after.items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_finetune_refuses_features_from_other_weights(feature_folders, tmp_path) -> None:
    _weights, real, fake = feature_folders
    other = save_checkpoint(tmp_path / "other.pth", narrow_model(seed=1))
    done = run_cli("finetune", "--weights", str(other), "--real", str(real), "--fake",
                   str(fake), "--out", str(tmp_path / "x.pth"))  # fmt: skip
    assert done.returncode == 2 and "other weights" in done.stderr
