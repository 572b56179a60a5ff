"""ONNX export: eval mode kept, BatchNorm folded, metadata, checker, dynamic batch, and the
gate: ONNX Runtime equals PyTorch FP32 within 1e-4 relative, on random weights and real crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engines import export, method
from engines.backends import OnnxRuntimeBackend, clip_logits
from engines.frames import five_frame_inputs, window_keys
from engines.method import normalise_crops
from engines.model import LipForensics, ModelConfig
from tests.live_support import NARROW, TALKING
from tests.test_model import randomise

DATA = Path(__file__).parent / "data"


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference, relative to the largest reference magnitude."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="session")
def paper_model() -> LipForensics:
    """The paper's network with random weights (BN statistics and PReLU slopes included)."""
    return randomise(LipForensics(), seed=3)


@pytest.fixture(scope="session")
def paper_logits_before_export(paper_model, real_clips) -> np.ndarray:
    with torch.no_grad():
        return paper_model(torch.from_numpy(real_clips)[:, None]).numpy()


@pytest.fixture(scope="session")
def exported(paper_model, paper_logits_before_export, tmp_path_factory) -> export.ExportedModel:
    """The paper-sized model exported once for the whole session (after its logits were taken)."""
    folder = tmp_path_factory.mktemp("onnx")
    return export.export_model(paper_model, folder, source_sha256="ab" * 32)


@pytest.fixture(scope="session")
def ort_backend(exported) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(exported.encoder, exported.head)


@pytest.fixture(scope="session")
def real_clips() -> np.ndarray:
    """Normalised (4, 25, 88, 88) clips of real mouth crops from the talking-face fixture."""
    from stream.faces.reader import extract_mouth_crops

    crops = extract_mouth_crops(TALKING).crops
    usable = len(crops) // 25 * 25
    assert usable >= 50, "the fixture should give at least two clips of crops"
    return normalise_crops(crops[:usable]).reshape(-1, 25, 88, 88)


def test_export_leaves_the_model_in_eval_mode_with_the_same_logits(
    paper_model, exported, real_clips, paper_logits_before_export
):
    assert not any(module.training for module in paper_model.modules())
    assert not paper_model.encoder.training
    with torch.no_grad():
        after = paper_model(torch.from_numpy(real_clips)[:, None]).numpy()
    np.testing.assert_array_equal(after, paper_logits_before_export)


@pytest.fixture(scope="session")
def narrow_mixed_modes(tmp_path_factory):
    """A narrow model in training mode except its head, its flags, and its export."""
    model = randomise(LipForensics(NARROW), seed=1).train()
    model.head.eval()
    flags = {name: m.training for name, m in model.named_modules()}
    folder = tmp_path_factory.mktemp("narrow")
    return model, flags, export.export_model(model, folder, source_sha256="0" * 64)


def test_export_restores_each_modules_own_training_flag(narrow_mixed_modes):
    model, flags, _ = narrow_mixed_modes
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert model.encoder.training


def test_exporting_a_training_mode_model_still_writes_the_eval_network(narrow_mixed_modes):
    model, _, exported = narrow_mixed_modes
    clips = np.random.default_rng(0).standard_normal((2, 25, 88, 88)).astype(np.float32)
    logits = clip_logits(OnnxRuntimeBackend(exported.encoder, exported.head), clips)
    eval_copy = LipForensics(NARROW)
    eval_copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = eval_copy.eval()(torch.from_numpy(clips)[:, None]).numpy()
    assert relative_error(logits, expected) < 1e-4


def test_batchnorm_is_folded_into_the_convolutions_and_the_head_products(exported):
    encoder, head = (
        {n.op_type for n in onnx.load(str(p)).graph.node} for p in (exported.encoder, exported.head)
    )
    assert "Conv" in encoder and "BatchNormalization" not in encoder
    assert "MatMul" in head and not {"Conv", "BatchNormalization"} & head


def test_files_pass_the_onnx_checker_and_have_a_dynamic_batch_axis(exported):
    for path, name, shape in (
        (exported.encoder, export.ENCODER_INPUT, [1, 5, 88, 88]),
        (exported.head, export.HEAD_INPUT, [25, 512]),
    ):
        onnx.checker.check_model(str(path), full_check=True)
        graph = onnx.load(str(path)).graph
        (graph_input,) = graph.input
        dims = graph_input.type.tensor_type.shape.dim
        assert graph_input.name == name
        assert dims[0].dim_param == "batch"
        assert [d.dim_value for d in dims[1:]] == shape


def test_metadata_names_the_weights_normalisation_opset_and_config(exported, paper_model):
    encoder, head = export.read_metadata(exported.encoder), export.read_metadata(exported.head)
    assert encoder["source_sha256"] == "ab" * 32
    assert float(encoder["normalisation_mean"]) == method.MEAN
    assert float(encoder["normalisation_std"]) == method.STD
    assert (
        int(encoder["opset"])
        == export.OPSET
        == onnx.load(str(exported.head)).opset_import[0].version
    )
    assert encoder["stage"] == "frame_encoder" and head["stage"] == "temporal_head"
    assert ModelConfig.from_dict(json.loads(head["model_config"])) == paper_model.config


@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_encoder_equals_pytorch_on_random_windows(paper_model, ort_backend, batch):
    windows = np.random.default_rng(batch).standard_normal((batch, 1, 5, 88, 88), np.float32)
    with torch.no_grad():
        expected = paper_model.encoder.encode_frames(torch.from_numpy(windows)).numpy()
    actual = ort_backend.encode_frames(windows)
    assert actual.shape == (batch, 512)
    assert relative_error(actual, expected) < 1e-4


@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_head_equals_pytorch_on_random_features(paper_model, ort_backend, batch):
    features = np.random.default_rng(batch).random((batch, 25, 512), np.float32)
    with torch.no_grad():
        expected = paper_model.head(torch.from_numpy(features)).numpy()
    actual = ort_backend.head(features)
    assert actual.shape == (batch,)
    assert relative_error(actual, expected) < 1e-4


@pytest.mark.parametrize("batch", [1, 4])
def test_onnxruntime_clip_logits_equal_the_whole_pytorch_network_on_real_crops(
    ort_backend, real_clips, paper_logits_before_export, batch
):
    logits = clip_logits(ort_backend, real_clips[:batch])
    assert relative_error(logits, paper_logits_before_export[:batch]) < 1e-4


def test_encoder_runs_seven_real_windows_in_one_batch(paper_model, ort_backend, real_clips):
    windows = five_frame_inputs(real_clips[0], window_keys(0, len(real_clips[0])))[9:16]
    with torch.no_grad():
        expected = paper_model.encoder.encode_frames(torch.from_numpy(windows)).numpy()
    assert relative_error(ort_backend.encode_frames(windows), expected) < 1e-4


def test_cached_export_reuses_the_files_and_keys_on_the_weights(tmp_path):
    model = randomise(LipForensics(NARROW), seed=4)
    first = export.cached_export(model, tmp_path, source_sha256="1" * 64)
    stamp = first.encoder.stat().st_mtime_ns, first.head.stat().st_mtime_ns
    again = export.cached_export(model, tmp_path, source_sha256="1" * 64)
    assert again.encoder == first.encoder
    assert (again.encoder.stat().st_mtime_ns, again.head.stat().st_mtime_ns) == stamp
    other = export.cached_export(model, tmp_path, source_sha256="2" * 64)
    assert other.encoder.parent != first.encoder.parent


def test_state_dict_hash_changes_with_any_weight():
    model = randomise(LipForensics(NARROW), seed=5)
    before = export.state_dict_sha256(model)
    with torch.no_grad():
        model.head.tcn_output.bias += 1e-3
    assert export.state_dict_sha256(model) != before


def test_fp16_copy_keeps_float32_inputs_and_outputs(narrow_mixed_modes, tmp_path):
    model, _, exported = narrow_mixed_modes
    half = export.to_fp16(exported.head, tmp_path / "head.fp16.onnx")
    proto = onnx.load(str(half))
    float32 = onnx.TensorProto.FLOAT
    assert proto.graph.input[0].type.tensor_type.elem_type == float32
    assert proto.graph.output[0].type.tensor_type.elem_type == float32
    weights = [t for t in proto.graph.initializer if len(t.dims) > 1]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    features = np.random.default_rng(0).random((3, 25, NARROW.feature_dim), np.float32)
    with torch.no_grad():
        expected = model.head(torch.from_numpy(features)).numpy()
    actual = session.run(None, {export.HEAD_INPUT: features})[0]
    assert relative_error(actual, expected) < 1e-2
