#!/usr/bin/env bash
# GPU check of the engines, in one go (under 8 minutes) on a machine with an NVIDIA GPU and
# no network. Builds the FP16 TensorRT engines of both stages, checks them against PyTorch
# FP32 on the same GPU (random windows and real mouth crops), times batch 1/8/32/128/256 for
# each stage and prints one table. With --int8 it also builds and checks INT8 engines.
#
# Nothing is downloaded. What must be there beforehand:
#   - the project's .venv (make venv: torch, onnx, onnxruntime, mediapipe, ...);
#   - the two packages of the GPU extra that CPU machines lack, as wheels in ../wheels next to
#     the repository (or in $WHEELS), matching this machine's Python and CUDA:
#       * TensorRT 10 or 11: the tensorrt-cuXX, tensorrt-cuXX-bindings and tensorrt-cuXX-libs
#         wheels (PyPI's "tensorrt" is only a stub that fetches these from NVIDIA's index at
#         install time, so download them on a connected machine with pip download from that
#         index and copy them over);
#       * pycuda: PyPI has only its source, so build the wheel on a connected machine with
#         the same CUDA toolkit: pip wheel pycuda -w wheels/
#     Every wheel found there is installed with --no-index; nothing is installed when
#     tensorrt and pycuda already import.
#
# Usage: bash bench/gpu_check.sh [--weights lipforensics_ff.pth] [--int8]
# Engines are cached in $LIPFORENSICS_CACHE (default: a fresh temporary folder), so a second
# run with the same cache loads them instead of rebuilding.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WHEELS=${WHEELS:-../wheels}
export LIPFORENSICS_CACHE=${LIPFORENSICS_CACHE:-$(mktemp -d)}

nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader
if ! "$PY" -c "import tensorrt, pycuda.driver" 2>/dev/null; then
    shopt -s nullglob
    wheels=("$WHEELS"/*.whl)
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "error: tensorrt/pycuda missing and no wheels in $WHEELS (see this script's header)" >&2
        exit 2
    fi
    "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" "${wheels[@]}"
fi

# "$PY -" puts the working folder (the repository root) first on the import path
timeout 470 "$PY" - "$@" <<'PYTHON'
"""Build, check and time the TensorRT engines; print one markdown table."""
import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.engines import network
from engines import export
from engines.backends import TensorRTBackend, TorchBackend, clip_logits
from engines.method import normalise_crops
from engines.tensorrt import import_tensorrt
from stream.faces.reader import extract_mouth_crops

parser = argparse.ArgumentParser()
parser.add_argument("--weights", type=Path)
parser.add_argument("--int8", action="store_true")
args = parser.parse_args()
trt, cuda = import_tensorrt()
torch.backends.cuda.matmul.allow_tf32 = False  # a true FP32 reference
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
model, source = network(args.weights)
cache = export.default_cache_dir()
exported = export.cached_export(model, cache, source_sha256=source)
# the reference runs on the GPU when this torch build has CUDA (the CPU build otherwise)
torch_device = "cuda" if torch.cuda.is_available() else "cpu"
reference = TorchBackend(model, device=torch_device)

crops = extract_mouth_crops("tests/data/talking.mp4").crops
clips = normalise_crops(crops[: len(crops) // 25 * 25]).reshape(-1, 25, 88, 88)
want_logits = clip_logits(reference, clips)

engines = {}
started = time.perf_counter()
engines["fp16"] = TensorRTBackend(exported.encoder, exported.head, cache_dir=cache)
print(f"TensorRT {trt.__version__}: FP16 engines ready in {time.perf_counter() - started:.0f} s")
if args.int8:
    from engines.quantize import quantize_model

    calibration = extract_mouth_crops("media/cap13_edit2.mp4").crops
    started = time.perf_counter()
    int8 = quantize_model(exported, calibration, exported.encoder.parent, target="tensorrt")
    engines["int8"] = TensorRTBackend(int8.encoder, int8.head, cache_dir=cache, precision="int8")
    print(f"INT8 engines (calibrated on {len(calibration)} crops) ready in "
          f"{time.perf_counter() - started:.0f} s")
if torch_device == "cuda":  # the fallback where TensorRT is missing
    engines["torch fp16"] = TorchBackend(model, device="cuda", half=True)

rng = np.random.default_rng(0)
windows = rng.standard_normal((64, 1, 5, 88, 88), np.float32)
with torch.no_grad():
    want_features = reference.encode_frames(windows)
print(f"\nparity vs PyTorch FP32 on {torch_device} (max abs error; reference max |value|):")
for name, engine in engines.items():
    feature_error = np.abs(engine.encode_frames(windows) - want_features).max()
    logit_error = np.abs(clip_logits(engine, clips) - want_logits)
    print(f"  {name:10s} features {feature_error:.2e} (of {np.abs(want_features).max():.2f}); "
          f"real-crop clip logits max {logit_error.max():.2e} mean {logit_error.mean():.2e} "
          f"(of {np.abs(want_logits).max():.2f}, {len(clips)} clips)")


def latency(function, data, repeats=20):
    function(data)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(data)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


print("\n| engine | stage | batch | latency ms | items/s |")
print("|---|---|---|---|---|")
feature_dim = want_features.shape[1]
for name, engine in engines.items():
    for batch in (1, 8, 32, 128, 256):
        frames = rng.standard_normal((batch, 1, 5, 88, 88), np.float32)
        features = rng.standard_normal((batch, 25, feature_dim), np.float32)
        for stage, function, data, unit in (
            ("frame encoder", engine.encode_frames, frames, "frames/s"),
            ("temporal head", engine.head, features, "windows/s"),
        ):
            seconds = latency(function, data)
            print(f"| {name} | {stage} | {batch} | {1000 * seconds:.2f} | "
                  f"{batch / seconds:,.0f} {unit} |")
print(f"\nGPU {engines['fp16'].device_name}; latency includes host<->device copies; "
      f"engines cached in {cache}")
PYTHON
