"""INT8 on the CPU for real use: ``--precision int8`` calibrates the encoder on genuine
crops and quantises the head dynamically, caches both by weights and calibration, prints
the error against FP32, and refuses a model past the bound."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from commands.cli import main
from engines import int8_cpu, quantize
from engines.backends import clip_logits
from engines.method import normalise_crops
from engines.quantize import AVX2, VNNI, cpu_class
from errors import LipForensicsError, LipForensicsWarning
from stream.detector import Detector
from stream.settings.pipeline import Settings
from tests.live_support import TALKING


@pytest.fixture(scope="module")
def crops_file(tmp_path_factory):
    from stream.faces.reader import extract_mouth_crops

    path = tmp_path_factory.mktemp("calibration") / "genuine.npy"
    np.save(path, extract_mouth_crops(TALKING).crops)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory, narrow_weights):
    """A cache of this module's own, so the first load really builds."""
    return tmp_path_factory.mktemp("int8-cache")


def load(weights, calibration, cache, monkeypatch, precision="int8"):
    monkeypatch.setenv("LIPFORENSICS_CACHE", str(cache))
    return Detector.load(
        weights, backend="onnxruntime", precision=precision, int8_calibration=calibration
    )


def test_int8_is_built_once_checked_and_close_to_fp32(
    narrow_weights, crops_file, cache, monkeypatch
):
    built = load(narrow_weights, crops_file, cache, monkeypatch)
    assert built.int8 is not None and built.int8.build_seconds > 0
    assert 0 < built.int8.max_error <= int8_cpu.MAX_LOGIT_ERROR
    assert built.int8.held_back_clips >= 1 and built.int8.calibration_crops >= 25
    again = load(narrow_weights, crops_file, cache, monkeypatch)
    assert again.int8 is not None and again.int8.build_seconds == 0.0  # from the cache
    assert again.int8.max_error == pytest.approx(built.int8.max_error, rel=1e-6)
    assert "cached" in again.int8.summary() and "held-back" in again.int8.summary()
    encoders = list(cache.glob("int8-cpu/*/frame_encoder.int8-cpu.onnx"))
    assert len(encoders) == 1
    ops = {node.op_type for node in onnx.load(str(encoders[0])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    (head,) = cache.glob("int8-cpu/*/temporal_head.int8-dynamic.onnx")
    ops = {node.op_type for node in onnx.load(str(head)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops and "MatMul" not in ops
    fp32 = load(narrow_weights, None, cache, monkeypatch, precision="fp32")
    assert fp32.int8 is None
    clips = normalise_crops(np.load(crops_file)[:75]).reshape(3, 25, 88, 88)
    expected, logits = clip_logits(fp32.backend, clips), clip_logits(again.backend, clips)
    assert not np.array_equal(logits, expected)
    assert np.abs(logits - expected).max() <= int8_cpu.MAX_LOGIT_ERROR


def test_other_calibration_data_is_another_cache_entry(
    narrow_weights, crops_file, cache, monkeypatch, tmp_path
):
    other = tmp_path / "other.npy"
    np.save(other, np.load(crops_file)[::-1].copy())
    assert load(narrow_weights, other, cache, monkeypatch).int8.build_seconds > 0
    assert len(list(cache.glob("int8-cpu/*/int8_check.json"))) == 2


def test_the_cache_and_its_check_belong_to_one_cpu_class(
    narrow_weights, crops_file, cache, monkeypatch
):
    """A check passed on one instruction-set class is not trusted on another: another class
    quantises, checks and stores again, with its own weight type."""
    here = load(narrow_weights, crops_file, cache, monkeypatch).int8
    assert here is not None and here.cpu_class == cpu_class()
    monkeypatch.setattr(quantize, "cpu_class", lambda: "aarch64")
    other = load(narrow_weights, crops_file, cache, monkeypatch).int8
    assert other is not None and other.build_seconds > 0 and other.cpu_class == "aarch64"
    stored = {
        json.loads(path.read_text())["cpu_class"]: path.parent
        for path in cache.glob("int8-cpu/*/int8_check.json")
    }
    assert {cpu_class(), "aarch64"} <= set(stored)
    for name, ndim in (("frame_encoder.int8-cpu.onnx", 4), ("temporal_head.int8-dynamic.onnx", 2)):
        graph = onnx.load(str(stored["aarch64"] / name)).graph
        arrays = [onnx.numpy_helper.to_array(t) for t in graph.initializer if len(t.dims) == ndim]
        weights = [w.astype(int) for w in arrays if w.dtype == np.int8]
        assert weights and max(int(np.abs(w).max()) for w in weights) == 64  # 7 bits, not 127


def test_the_cpu_class_comes_from_cpuid():
    assert cpu_class({"AVX2": True, "AVX512F": True, "AVX512VNNI": True}, "x86_64") == VNNI
    assert cpu_class({"AVX2": True, "AVX512F": True, "AVX512VNNI": False}, "x86_64") == AVX2
    assert cpu_class({"AVX2": True}, "AMD64") == AVX2
    assert cpu_class({"SSE42": True}, "x86_64") == "x86_64"
    assert cpu_class({"AVX512VNNI": True}, "aarch64") == "aarch64"
    cpuinfo = Path("/proc/cpuinfo")
    if cpu_class() in (VNNI, AVX2) and cpuinfo.exists():  # the kernel read the same CPUID
        flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo.read_text(), re.M).group(1).split())
        assert (cpu_class() == VNNI) == ("avx512_vnni" in flags)


def test_an_int8_model_past_the_bound_is_refused_in_one_line(
    narrow_weights, crops_file, cache, monkeypatch
):
    monkeypatch.setattr(int8_cpu, "MAX_LOGIT_ERROR", 0.0)  # the measured error is above 0
    with pytest.raises(LipForensicsError, match=r"^INT8 refused: .* \(bound 0\.0\)") as error:
        load(narrow_weights, crops_file, cache, monkeypatch)
    assert "\n" not in str(error.value)


def test_too_few_calibration_crops_are_refused(narrow_weights, tmp_path, cache, monkeypatch):
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((40, 96, 96), np.uint8))
    with pytest.raises(LipForensicsError, match="at least 50 genuine mouth crops"):
        load(narrow_weights, few, cache, monkeypatch)
    with pytest.raises(LipForensicsError, match="calibration file not found"):
        load(narrow_weights, tmp_path / "missing.npy", cache, monkeypatch)


def test_a_calibration_file_whose_header_claims_a_billion_crops_is_refused(
    narrow_weights, tmp_path, cache, monkeypatch
):
    """Issue 24, row 21: a .npy header claiming 1e9 x 96 x 96 was "Unable to allocate
    8.38 TiB"; it is refused as ``scan`` refuses it (the file is shorter than its header)."""
    huge = tmp_path / "huge.npy"
    with huge.open("wb") as file:
        header = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 96, 96)}
        np.lib.format.write_array_header_1_0(file, header)
        file.write(bytes(96 * 96 * 30))
    with pytest.raises(LipForensicsError, match=f"cannot read calibration crops {huge}: "):
        load(narrow_weights, huge, cache, monkeypatch)


def test_int8_needs_onnxruntime_and_a_known_precision(narrow_weights, crops_file):
    with pytest.raises(LipForensicsError, match="--backend torch runs fp32, not --precision int8"):
        Detector.load(
            narrow_weights, backend="torch", precision="int8", int8_calibration=crops_file
        )
    with pytest.raises(LipForensicsError, match="precision must be one of fp32, fp16, int8"):
        Settings.of(precision="int4")


def test_scan_with_int8_prints_the_error_against_fp32(
    narrow_weights, crops_file, cache, monkeypatch, capsys
):
    monkeypatch.setenv("LIPFORENSICS_CACHE", str(cache))
    argv = ["scan", str(crops_file), "--weights", str(narrow_weights), "--backend", "onnxruntime"]
    assert main([*argv, "--precision", "int8", "--int8-calibration", str(crops_file)]) == 0
    err = capsys.readouterr().err
    assert f"INT8 (ONNX Runtime, {cpu_class()}) cached" in err and "against FP32" in err
    assert main([*argv[:4], "--backend", "torch", "--precision", "int8"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_the_dynamic_int8_head_has_no_calibrated_range_to_clip_to(
    narrow_weights, crops_file, cache, monkeypatch
):
    """Features far outside anything genuine (as a manipulated clip's may be) keep their
    logits: a head calibrated on genuine features would clip them to the genuine range."""
    int8 = load(narrow_weights, crops_file, cache, monkeypatch)
    fp32 = load(narrow_weights, None, cache, monkeypatch, precision="fp32")
    clips = normalise_crops(np.load(crops_file)[:50]).reshape(2, 25, 88, 88)
    features = np.stack([fp32.backend.encode_frames(w) for w in map(_windows, clips)])
    for scale in (1.0, 8.0):
        expected = fp32.backend.head(features * scale)
        error = np.abs(int8.backend.head(features * scale) - expected)
        assert error.max() <= 0.02 * np.abs(expected).max() + 1e-3


def _windows(clip: np.ndarray) -> np.ndarray:
    """The 25 five-frame encoder inputs of one normalised clip (25, 88, 88)."""
    from engines.frames import five_frame_inputs, window_keys

    return five_frame_inputs(clip, window_keys(0, len(clip)))


def test_a_corrupt_cached_int8_model_is_built_again_with_a_warning(
    narrow_weights, crops_file, tmp_path, monkeypatch
):
    load(narrow_weights, crops_file, tmp_path, monkeypatch)
    (encoder,) = tmp_path.glob("int8-cpu/*/frame_encoder.int8-cpu.onnx")
    encoder.write_bytes(encoder.read_bytes()[:1000])  # cut short on disk
    with pytest.warns(LipForensicsWarning, match="is corrupt; building it again"):
        again = load(narrow_weights, crops_file, tmp_path, monkeypatch)
    assert again.int8 is not None and again.int8.build_seconds > 0
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]
