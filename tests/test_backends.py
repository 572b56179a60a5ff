"""Backends: the registry (names, precisions, their errors), the same numbers from torch and
ONNX Runtime, the export cache, and loading a real checkpoint file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from engines import backends, export, registry
from engines.checkpoint import save_checkpoint
from engines.digest import file_sha256
from engines.export import read_metadata
from engines.method import normalise_crops
from engines.model import LipForensics
from engines.quantize import (
    AVX2,
    VNNI,
    calibration_windows,
    cpu_class,
    load_crops,
    quantize_model,
)
from engines.tensorrt import tensorrt_unavailable_reason
from errors import CheckpointError, LipForensicsError, MediaError
from stream.detector import Detector
from tests.live_support import NARROW, TALKING
from tests.test_model import randomise

DATA = Path(__file__).parent / "data"
TENSORRT_MISSING = tensorrt_unavailable_reason()


@pytest.fixture(scope="module")
def narrow_model() -> LipForensics:
    return randomise(LipForensics(NARROW), seed=11)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def request(model: LipForensics, **fields: object) -> registry.EngineRequest:
    return registry.EngineRequest(model, "c" * 64, **fields)


@pytest.fixture(scope="module")
def ort_backend(narrow_model, cache_dir):
    return registry.build_backend("onnxruntime", request(narrow_model, cache_dir=cache_dir))


def test_unknown_backend_name_lists_the_choices():
    with pytest.raises(LipForensicsError, match="unknown backend 'tensorflow'.*onnxruntime"):
        registry.resolve_backend_name("tensorflow")


def test_named_backends_resolve_to_themselves():
    for name in ("torch", "torch-cuda", "onnxruntime", "tensorrt", "triton"):
        assert registry.resolve_backend_name(name) == name


def test_auto_is_tensorrt_then_torch_on_a_cuda_gpu_then_onnxruntime():
    cuda_missing = registry.cuda_unavailable_reason()
    expected = (
        "tensorrt" if not TENSORRT_MISSING else "onnxruntime" if cuda_missing else "torch-cuda"
    )
    assert registry.resolve_backend_name("auto") == expected


@pytest.mark.skipif(TENSORRT_MISSING is None, reason="TensorRT and a GPU are available here")
def test_auto_on_a_gpu_without_tensorrt_is_torch_in_fp16(monkeypatch):
    """What a pip-only GPU machine gets (the GPU is mocked: none here): PyTorch on CUDA in
    FP16, not ONNX Runtime on the CPU."""
    found = replace(registry.REGISTRY["torch-cuda"], unavailable=lambda: None)
    monkeypatch.setitem(registry.REGISTRY, "torch-cuda", found)
    assert registry.resolve_backend_name("auto") == "torch-cuda"
    assert registry.resolve_precision("auto", None) == "fp16"


def test_each_backend_runs_its_own_precision_unless_asked_for_another_it_runs():
    assert registry.resolve_precision("onnxruntime", None) == "fp32"
    assert registry.resolve_precision("onnxruntime", "int8") == "int8"
    assert registry.resolve_precision("tensorrt", None) == "fp16"
    assert registry.resolve_precision("torch-cuda", "fp32") == "fp32"
    with pytest.raises(LipForensicsError, match="--backend torch runs fp32, not --precision fp16"):
        registry.resolve_precision("torch", "fp16")
    with pytest.raises(LipForensicsError, match="tensorrt runs fp16, fp32.*build-engine --int8"):
        registry.resolve_precision("tensorrt", "int8")
    with pytest.raises(LipForensicsError, match="server's choice"):
        registry.resolve_precision("triton", "int8")
    with pytest.raises(LipForensicsError, match="unknown precision 'bf16': expected one of"):
        registry.resolve_precision("onnxruntime", "bf16")


def test_int8_without_calibration_data_says_what_it_needs(narrow_model, cache_dir):
    with pytest.raises(LipForensicsError, match="needs --int8-calibration"):
        registry.build_backend("onnxruntime", request(narrow_model, precision="int8"))


@pytest.mark.skipif(
    registry.cuda_unavailable_reason() is None, reason="PyTorch sees a CUDA GPU here"
)
def test_torch_cuda_without_a_gpu_says_why_in_one_line(narrow_model):
    with pytest.raises(LipForensicsError, match="cannot use --backend torch-cuda: ") as error:
        registry.build_backend("torch-cuda", request(narrow_model))
    assert "\n" not in str(error.value)


@pytest.mark.skipif(TENSORRT_MISSING is None, reason="TensorRT and a GPU are available here")
def test_tensorrt_where_it_cannot_run_says_why_in_one_line(narrow_model, cache_dir):
    with pytest.raises(LipForensicsError) as caught:
        registry.build_backend("tensorrt", request(narrow_model, cache_dir=cache_dir))
    assert str(caught.value) == f"cannot use --backend tensorrt: {TENSORRT_MISSING}"
    assert "\n" not in TENSORRT_MISSING


def test_triton_is_not_built_from_a_network(narrow_model):
    with pytest.raises(LipForensicsError, match="runs on a server: give --triton-url"):
        registry.build_backend("triton", request(narrow_model))


def test_the_torch_backend_uses_the_threads_it_is_given(narrow_model):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        backend = registry.build_backend("torch", request(narrow_model, threads=1))
        assert backend.name == "torch" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_bad_backend_name_fails_before_the_weights_are_read(tmp_path):
    with pytest.raises(LipForensicsError, match="unknown backend"):
        Detector.load(tmp_path / "missing.pth", backend="bogus")


def test_a_missing_weight_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="weights file not found"):
        Detector.load(tmp_path / "missing.pth", backend="onnxruntime")


@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_backend_equals_the_torch_backend(narrow_model, ort_backend, batch):
    torch_backend = backends.TorchBackend(narrow_model)
    rng = np.random.default_rng(batch)
    windows = rng.standard_normal((batch, 1, 5, 88, 88), np.float32)
    features = rng.random((batch, 25, NARROW.feature_dim), np.float32)
    for stage in ("encode_frames", "head"):
        data = windows if stage == "encode_frames" else features
        expected = getattr(torch_backend, stage)(data)
        actual = getattr(ort_backend, stage)(data)
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


def test_clip_logits_equal_the_whole_network(narrow_model, ort_backend):
    clips = np.random.default_rng(5).standard_normal((3, 25, 88, 88)).astype(np.float32)
    with torch.no_grad():
        expected = narrow_model(torch.from_numpy(clips)[:, None]).numpy()
    logits = backends.clip_logits(ort_backend, clips)
    assert logits.shape == (3,)
    assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max()


def test_a_second_start_reuses_the_cached_export(narrow_model, ort_backend, cache_dir):
    (folder,) = (cache_dir / "onnx").iterdir()
    stamps = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    again = registry.build_backend("onnxruntime", request(narrow_model, cache_dir=cache_dir))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == stamps
    windows = np.zeros((2, 1, 5, 88, 88), np.float32)
    np.testing.assert_array_equal(again.encode_frames(windows), ort_backend.encode_frames(windows))


def test_a_detector_loads_a_checkpoint_file_and_keys_the_cache_on_its_hash(
    narrow_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIPFORENSICS_CACHE", str(tmp_path / "cache"))
    weights = save_checkpoint(tmp_path / "narrow.pth", narrow_model)
    backend = Detector.load(weights, backend="onnxruntime").backend
    assert backend.name == "onnxruntime"
    (folder,) = (tmp_path / "cache" / "onnx").iterdir()
    assert read_metadata(folder / "frame_encoder.onnx")["source_sha256"] == file_sha256(weights)
    clips = np.random.default_rng(6).standard_normal((2, 25, 88, 88)).astype(np.float32)
    torch_logits = backends.clip_logits(Detector.load(weights, backend="torch").backend, clips)
    ort_logits = backends.clip_logits(backend, clips)
    assert np.abs(ort_logits - torch_logits).max() <= 1e-4 * np.abs(torch_logits).max()


@pytest.fixture(scope="module")
def genuine_crops():
    from stream.faces.reader import extract_mouth_crops

    return extract_mouth_crops(TALKING).crops


@pytest.fixture(scope="module")
def narrow_export(narrow_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    return export.export_model(narrow_model, folder, source_sha256="e" * 64)


@pytest.mark.parametrize("cpu", [None, AVX2], ids=["this-cpu", "avx2-recipe"])
def test_int8_for_the_cpu_stays_close_to_fp32_on_genuine_crops(
    narrow_export, genuine_crops, cpu, tmp_path
):
    """The recipe for this CPU's class, and the AVX2 one (exact on every CPU), hold."""
    int8 = quantize_model(narrow_export, genuine_crops, tmp_path, "cpu", cpu)
    clips = normalise_crops(genuine_crops[:100]).reshape(4, 25, 88, 88)
    fp32 = backends.OnnxRuntimeBackend(narrow_export.encoder, narrow_export.head)
    quantized = backends.OnnxRuntimeBackend(int8.encoder, int8.head)
    expected, logits = backends.clip_logits(fp32, clips), backends.clip_logits(quantized, clips)
    features = quantized.encode_frames(calibration_windows(genuine_crops[:25]))
    assert features.shape == (25, NARROW.feature_dim)
    assert np.abs(logits - expected).max() <= 0.05 * np.abs(expected).max()
    assert not np.array_equal(logits, expected)  # it really is another network
    graph = onnx.load(str(int8.encoder)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    weights = [onnx.numpy_helper.to_array(t) for t in graph.initializer if len(t.dims) == 4]
    assert {w.dtype for w in weights} == {np.dtype(np.int8)}
    top = max(int(np.abs(w.astype(int)).max()) for w in weights)
    assert top == (127 if (cpu or cpu_class()) == VNNI else 64)  # 7 bits: no 16-bit saturation


def test_int8_for_tensorrt_is_signed_symmetric_qdq(narrow_export, genuine_crops):
    int8 = quantize_model(narrow_export, genuine_crops, narrow_export.encoder.parent, "tensorrt")
    for path in (int8.encoder, int8.head):
        graph = onnx.load(str(path)).graph
        values = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        zero_points = [
            values[node.input[2]]
            for node in graph.node
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2
        ]
        assert zero_points
        assert all(z.dtype == np.int8 and not z.any() for z in zero_points)


def test_calibration_crops_must_be_crops_files(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((30, 88, 88), np.float32))
    with pytest.raises(MediaError, match="not a crops file"):
        load_crops([bad])
    with pytest.raises(MediaError, match="cannot read"):
        load_crops([tmp_path / "missing.npy"])
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((10, 96, 96), np.uint8))
    with pytest.raises(MediaError, match="at least 25"):
        load_crops([few])
