"""The temporal head in ONNX Runtime: convolutions vs matrix products vs dynamic INT8.

Usage: ``python -m bench.head [--weights W [VIDEO ...]] [--repeats 20]``. The head of the paper-size
network (random weights unless ``--weights``) exported three ways: as PyTorch's ``Conv1d``
layers (the export before 2026-12-01), as matrix products (:mod:`engines.matmul_head`, the
export now) and that file dynamically quantised (INT8 weights, per-call activation ranges:
``--precision int8``, :func:`engines.int8_cpu.quantize_head_dynamic`). One inference
thread; process CPU ms per window at batch 1 and 8 (after two warm-up calls), and the
largest logit difference from PyTorch on 64 random feature windows.

With ``--weights``, a second table: how far the dynamic INT8 head moves the logits of real
windows (every stride-5 window of each video: by default the demo clips and ``media/*.mp4``;
features from the FP32 encoder, so the change is the head's alone).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from engines import export
from engines.backends import ort_session_options
from engines.checkpoint import load_checkpoint
from engines.int8_cpu import quantize_head_dynamic
from engines.matmul_head import MatMulHead
from engines.method import CLIP_FRAMES
from engines.model import LipForensics

ROOT = Path(__file__).resolve().parents[1]


def export_head(module: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``module`` to ONNX with a dynamic batch axis (as :mod:`engines.export` does)."""
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        input_names=[export.HEAD_INPUT],
        output_names=[export.HEAD_OUTPUT],
        dynamic_axes={export.HEAD_INPUT: {0: "batch"}, export.HEAD_OUTPUT: {0: "batch"}},
        opset_version=export.OPSET,
    )
    return path


def cpu_ms_per_window(session, features: np.ndarray, repeats: int) -> float:
    """Process CPU ms per window of one ``session.run`` on ``features``."""
    feed = {export.HEAD_INPUT: features}
    for _ in range(2):
        session.run(None, feed)
    began = time.process_time()
    for _ in range(repeats):
        session.run(None, feed)
    return 1000.0 * (time.process_time() - began) / repeats / len(features)


def main() -> None:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("videos", type=Path, nargs="*", help="with --weights (default: bundled)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_checkpoint(args.weights).model if args.weights else LipForensics().eval()
    rng = np.random.default_rng(0)
    features = rng.standard_normal((64, CLIP_FRAMES, model.config.feature_dim), np.float32)
    with torch.no_grad():
        expected = model.head(torch.from_numpy(features)).numpy()
    print(f"# {len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| head | CPU ms per window, batch 1 | batch 8 | max logit diff from PyTorch |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        example = torch.from_numpy(features[:2])
        conv = export_head(model.head, example, Path(folder) / "conv.onnx")
        matmul = export_head(MatMulHead(model.head), example, Path(folder) / "matmul.onnx")
        dynamic = quantize_head_dynamic(matmul, Path(folder) / "dynamic.onnx")
        for name, path in (("Conv1d", conv), ("MatMul", matmul), ("MatMul, dynamic INT8", dynamic)):
            session = ort.InferenceSession(str(path), ort_session_options(1))
            one = cpu_ms_per_window(session, features[:1], args.repeats)
            eight = cpu_ms_per_window(session, features[:8], max(2, args.repeats // 4))
            logits = session.run(None, {export.HEAD_INPUT: features})[0]
            diff = np.abs(logits - expected).max()
            print(f"| {name} | {one:.1f} | {eight:.1f} | {diff:.2e} |", flush=True)
        if args.weights:
            exported = export.export_model(model, Path(folder) / "model", source_sha256="bench")
            print_real_windows(exported, dynamic, args.videos or bundled_videos())


def bundled_videos() -> list[Path]:
    """The demo clips and the genuine clips in ``media/``."""
    from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED

    return [DEMO_GENUINE, DEMO_MANIPULATED, *sorted((ROOT / "media").glob("*.mp4"))]


def print_real_windows(exported: export.ExportedModel, dynamic: Path, videos: list[Path]) -> None:
    """Per video: FP32 logit range and the dynamic INT8 head's largest and mean change."""
    from engines.backends import OnnxRuntimeBackend, clip_logits
    from engines.method import normalise_crops
    from stream.faces.reader import extract_mouth_crops

    fp32 = OnnxRuntimeBackend(exported.encoder, exported.head, threads=1)
    int8 = OnnxRuntimeBackend(exported.encoder, dynamic, threads=1)
    print()
    print("| video | windows | FP32 logits | max change | mean change |")
    print("|---|---|---|---|---|")
    for video in videos:
        crops = extract_mouth_crops(video).crops
        starts = range(0, len(crops) - CLIP_FRAMES + 1, 5)
        clips = np.stack([normalise_crops(crops[s : s + CLIP_FRAMES]) for s in starts])
        expected = clip_logits(fp32, clips)
        change = np.abs(clip_logits(int8, clips) - expected)
        print(
            f"| {video.name} | {len(clips)} | {expected.min():.1f} .. {expected.max():.1f} "
            f"| {change.max():.3f} | {change.mean():.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
