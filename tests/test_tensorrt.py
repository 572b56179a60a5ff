"""TensorRT: the engine cache key and batch profiles everywhere; engines only on a GPU.

No test pretends to test TensorRT with a mock: the engine tests run only where TensorRT,
pycuda and an NVIDIA GPU exist, and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engines import export, tensorrt
from engines.model import LipForensics
from errors import LipForensicsError
from tests.live_support import NARROW
from tests.test_model import randomise

TENSORRT_MISSING = tensorrt.tensorrt_unavailable_reason()
needs_gpu = pytest.mark.skipif(TENSORRT_MISSING is not None, reason=str(TENSORRT_MISSING))

KEY = tensorrt.EngineKey(
    gpu_name="NVIDIA H100 80GB HBM3",
    compute_capability=(9, 0),
    tensorrt_version="10.13.0",
    onnx_sha256="a" * 64,
    profile=tensorrt.BatchProfile("frames", (1, 5, 88, 88)),
    precision="fp16",
)


@pytest.mark.parametrize(
    "change",
    [
        {"gpu_name": "NVIDIA L4"},
        {"compute_capability": (8, 9)},
        {"tensorrt_version": "11.0.0"},
        {"onnx_sha256": "b" * 64},
        {"profile": tensorrt.BatchProfile("frames", (1, 5, 88, 88), max_batch=128)},
        {"profile": tensorrt.BatchProfile("frames", (1, 5, 88, 88), opt_batch=8)},
        {"profile": tensorrt.BatchProfile("features", (25, 512))},
        {"precision": "int8"},
    ],
)
def test_engine_key_changes_when_any_part_changes(change):
    other = dataclasses.replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert other.filename("frame_encoder") != KEY.filename("frame_encoder")


def test_engine_key_is_stable_for_equal_parts():
    same = dataclasses.replace(KEY, profile=tensorrt.BatchProfile("frames", (1, 5, 88, 88)))
    assert same.digest() == KEY.digest()
    assert KEY.filename("temporal_head").startswith("temporal_head-fp16-")


def test_batch_profile_gives_min_opt_max_shapes():
    profile = tensorrt.BatchProfile("features", (25, 512), min_batch=1, opt_batch=16, max_batch=64)
    assert profile.shapes() == ((1, 25, 512), (16, 25, 512), (64, 25, 512))


def test_batch_profile_rejects_an_unordered_range():
    with pytest.raises(LipForensicsError, match="min <= opt <= max"):
        tensorrt.BatchProfile("frames", (1, 5, 88, 88), opt_batch=512, max_batch=256)


@pytest.mark.skipif(TENSORRT_MISSING is None, reason="TensorRT and a GPU are available here")
def test_import_tensorrt_says_why_it_cannot_run_here():
    with pytest.raises(LipForensicsError) as caught:
        tensorrt.import_tensorrt()
    assert str(caught.value) == TENSORRT_MISSING
    assert "pip install .[gpu]" in TENSORRT_MISSING or "GPU" in TENSORRT_MISSING


@pytest.fixture(scope="module")
def narrow_export(tmp_path_factory):
    model = randomise(LipForensics(NARROW), seed=21)
    folder = tmp_path_factory.mktemp("trt")
    return model, folder, export.export_model(model, folder / "onnx", source_sha256="d" * 64)


@needs_gpu
@pytest.mark.gpu
def test_fp16_engines_match_pytorch_fp32_and_are_cached(narrow_export):
    from engines.backends import TensorRTBackend

    model, folder, exported = narrow_export
    backend = TensorRTBackend(
        exported.encoder, exported.head, cache_dir=folder, max_batch=16, opt_batch=8
    )
    engines = sorted((folder / "tensorrt").glob("*.engine"))
    assert len(engines) == 2
    stamps = [p.stat().st_mtime_ns for p in engines]
    rng = np.random.default_rng(0)
    for batch in (1, 7, 23):  # 23 > max_batch: split into two engine calls
        windows = rng.standard_normal((batch, 1, 5, 88, 88), np.float32)
        features = rng.random((batch, 25, NARROW.feature_dim), np.float32)
        with torch.no_grad():
            want_features = model.encoder.encode_frames(torch.from_numpy(windows)).numpy()
            want_logits = model.head(torch.from_numpy(features)).numpy()
        got_features = backend.encode_frames(windows)
        got_logits = backend.head(features)
        assert got_features.shape == want_features.shape and got_logits.shape == want_logits.shape
        assert np.abs(got_features - want_features).max() <= 2e-2 * np.abs(want_features).max()
        assert np.abs(got_logits - want_logits).max() <= 2e-2 * np.abs(want_logits).max()
    TensorRTBackend(exported.encoder, exported.head, cache_dir=folder, max_batch=16, opt_batch=8)
    assert [p.stat().st_mtime_ns for p in engines] == stamps  # loaded, not rebuilt


@pytest.mark.skipif(TENSORRT_MISSING is None, reason="TensorRT and a GPU are available here")
def test_build_engine_without_tensorrt_is_a_one_line_error(capsys, tmp_path):
    from run_stream import main

    code = main(["build-engine", "--weights", str(tmp_path / "any.pth"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {TENSORRT_MISSING}\n"
    assert not any(tmp_path.iterdir())  # failed before exporting anything
