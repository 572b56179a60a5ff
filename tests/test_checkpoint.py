"""Weight files: every layout we accept loads strictly, every bad file is a one-line error."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from engines.checkpoint import TRUST_VARIABLE, load_checkpoint, save_checkpoint
from engines.model import LipForensics, ModelConfig
from errors import CheckpointError
from tests import live_support
from tests.live_support import NARROW, TALKING

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def paper_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return LipForensics().state_dict()


@pytest.fixture(scope="session")
def narrow_model() -> LipForensics:
    return live_support.narrow_model(seed=1)


def error_for(path: Path) -> str:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], skip=()) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if k not in skip)


def test_authors_layout_loads_strictly(tmp_path, paper_state):
    path = tmp_path / "lipforensics_ff.pth"
    torch.save({"model": paper_state}, path)
    loaded = load_checkpoint(path)
    assert loaded.layout == "lipforensics" and loaded.notes == ()
    assert loaded.config == ModelConfig() and not loaded.model.training
    assert same_weights(paper_state, loaded.model.state_dict())


def test_lipreading_layout_loads_encoder_and_tcn_and_reinitialises_the_head(tmp_path, paper_state):
    state = dict(paper_state)
    state["tcn.tcn_output.weight"] = torch.randn(500, 768)
    state["tcn.tcn_output.bias"] = torch.randn(500)
    path = tmp_path / "lrw_resnet18_mstcn.pth"
    torch.save({"model_state_dict": state, "epoch_idx": 80}, path)
    loaded = load_checkpoint(path)
    assert loaded.layout == "lipreading"
    assert len(loaded.notes) == 1 and "head is newly initialised" in loaded.notes[0]
    head = ("tcn.tcn_output.weight", "tcn.tcn_output.bias")
    assert same_weights(paper_state, loaded.model.state_dict(), skip=head)
    assert loaded.model.state_dict()[head[0]].shape == (1, 768)


def test_save_checkpoint_writes_the_authors_layout_and_a_config_only_when_narrow(
    tmp_path, narrow_model
):
    narrow = save_checkpoint(tmp_path / "narrow.pth", narrow_model)
    payload = torch.load(narrow, weights_only=True)
    assert set(payload) == {"model", "config"}
    loaded = load_checkpoint(narrow)
    assert loaded.config == NARROW
    assert same_weights(narrow_model.state_dict(), loaded.model.state_dict())
    x = torch.randn(1, 1, 25, 88, 88)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), narrow_model(x))

    paper = save_checkpoint(tmp_path / "paper.pth", LipForensics())
    assert set(torch.load(paper, weights_only=True)) == {"model"}
    assert not list(tmp_path.glob("*.partial"))


def test_bare_state_dict_loads(tmp_path, paper_state):
    path = tmp_path / "bare.pth"
    torch.save(paper_state, path)
    assert load_checkpoint(path).layout == "state_dict"


class _RunsCode:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, narrow_model):
    marker = tmp_path / "code-ran"
    path = tmp_path / "payload.pth"
    torch.save({"model": narrow_model.state_dict(), "config": NARROW.to_dict(),
                "extra": _RunsCode(marker)}, path)  # fmt: skip
    message = error_for(path)
    assert "can run code when loaded: refused" in message and TRUST_VARIABLE in message
    assert not marker.exists()


def test_a_trusted_old_file_with_python_objects_loads_only_when_opted_in(
    tmp_path, narrow_model, monkeypatch
):
    path = tmp_path / "with_args.pth"
    payload = {"model": narrow_model.state_dict(), "config": NARROW.to_dict()}
    torch.save({**payload, "args": argparse.Namespace(lr=0.1)}, path)
    assert "refused" in error_for(path)
    monkeypatch.setenv(TRUST_VARIABLE, "1")
    loaded = load_checkpoint(path)
    assert loaded.config == NARROW and TRUST_VARIABLE in loaded.notes[0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_weights_that_are_not_finite_are_refused_at_load(tmp_path, narrow_model, bad):
    state = dict(narrow_model.state_dict())
    key = "tcn.tcn_output.weight"
    state[key] = state[key].clone()
    state[key][0, 3] = bad
    torch.save({"model": state, "config": NARROW.to_dict()}, tmp_path / "bad.pth")
    message = error_for(tmp_path / "bad.pth")
    assert f"{key} holds 1 NaN or infinite value(s)" in message and "corrupt" in message


def test_an_unreadable_weights_file_is_one_line_and_exit_2(tmp_path, narrow_weights):
    path = tmp_path / "locked.pth"
    shutil.copy(narrow_weights, path)
    path.chmod(0)
    command = [sys.executable, str(ROOT / "run_stream.py"), "scan", str(TALKING)]
    if os.geteuid() == 0:  # root reads any file unless it gives up these two capabilities
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(
        [*command, "--weights", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: cannot read weights file {path}: Permission denied"


def test_missing_file_names_the_expected_checkpoint(tmp_path):
    message = error_for(tmp_path / "nope.pth")
    assert "not found" in message and "lipforensics_ff.pth" in message
    assert "not a file" in error_for(tmp_path)


@pytest.mark.parametrize("content", ["text", "empty", "zip", "truncated"])
def test_a_file_that_is_no_checkpoint_is_rejected(tmp_path, narrow_model, content):
    path = tmp_path / "weights.pth"
    if content == "text":
        path.write_text("these are not weights\n")
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", b"\x00garbage" * 100)
    else:
        save_checkpoint(path, narrow_model)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = error_for(path)
    assert "is not a PyTorch checkpoint" in message and "lipforensics_ff.pth" in message


def test_wrong_keys_are_named(tmp_path, narrow_model):
    state = dict(narrow_model.state_dict())
    removed = list(state)[:4]
    for key in removed:
        del state[key]
    state["fc.weight"] = torch.zeros(1)
    torch.save({"model": state, "config": NARROW.to_dict()}, tmp_path / "keys.pth")
    message = error_for(tmp_path / "keys.pth")
    assert "4 missing keys" in message and ", ..." in message
    assert all(key in message for key in removed[:3]) and removed[3] not in message
    assert "1 unexpected keys (fc.weight)" in message


def test_wrong_shape_is_named(tmp_path, narrow_model):
    # a narrow model saved without its config meets the paper's widths
    torch.save({"model": narrow_model.state_dict()}, tmp_path / "shapes.pth")
    message = error_for(tmp_path / "shapes.pth")
    width = NARROW.trunk_widths[0]
    assert f"trunk.layer1.0.conv1.weight has shape ({width}, {width}, 3, 3)" in message
    assert "expects (64, 64, 3, 3)" in message


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([1, 2, 3], "holds a list"),
        ({"epoch": 3}, "top-level keys: epoch"),
        ({"model": {}, "config": {"depth": 3}}, "unreadable 'config'"),
    ],
)
def test_unusable_contents_are_explained(tmp_path, payload, expected):
    torch.save(payload, tmp_path / "odd.pth")
    assert expected in error_for(tmp_path / "odd.pth")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"trunk_widths": [8, 16, 16, 2**20]}, "trunk_widths must hold whole numbers in 1..2048"),
        ({"trunk_widths": [8, 16, 16, 2000]}, "more than the 108,000,000 allowed"),
        ({"tcn_hidden": -5}, "tcn_hidden must hold whole numbers in 1..2048, got -5"),
        ({"tcn_hidden": "16"}, "tcn_hidden must hold whole numbers in 1..2048, got '16'"),
        ({"frontend_channels": 8.0}, "frontend_channels must hold whole numbers"),
        ({"tcn_levels": 10**9}, "tcn_levels must hold whole numbers in 1..8"),
        ({"tcn_kernels": [3, 4]}, "tcn_kernels must be odd"),
        ({"trunk_widths": 8}, "trunk_widths must be a list of 4..4 numbers, got 8"),
        ({"dropout": float("nan")}, "dropout must hold numbers in 0..0.99, got nan"),
        ("wide", "'config' entry: not a dict"),
    ],
)
def test_a_hostile_config_entry_is_refused_in_one_line_before_the_model_is_built(
    tmp_path, narrow_model, config, expected
):
    """Issue 24, row 5: huge widths allocated more than 8 GB before any check; negative or
    string widths were RuntimeError / TypeError tracebacks."""
    entry = {**NARROW.to_dict(), **config} if isinstance(config, dict) else config
    torch.save({"model": narrow_model.state_dict(), "config": entry}, tmp_path / "hostile.pth")
    message = error_for(tmp_path / "hostile.pth")
    assert expected in message and "\n" not in message
