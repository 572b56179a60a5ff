"""`scan`: score a video file (or a .npy of mouth crops) with LipForensics, clip by clip."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.errors import MediaError
from engines.preprocess import CLIP_FRAMES, CROP_SIZE, FPS, INPUT_SIZE, normalise_crops

if TYPE_CHECKING:
    from calibration.thresholds import Thresholds
    from engines.backends import Backend
    from engines.checkpoint import LoadedCheckpoint

HELP = "score a video (or .npy mouth crops) for forgery: one logit per 25-frame clip"
DESCRIPTION = """\
Score a video with LipForensics the way the paper does: mouth crops at 25 fps, consecutive
non-overlapping 25-frame clips (leftover frames dropped, clips never span a frame without a
face), one logit per clip, the video logit is their mean. Logit > 0 leans fake; it is not a
calibrated decision.

INPUT is a video file (any frame rate, resampled to 25 fps by timestamp) or a .npy uint8
array (T, 96, 96) of ready mouth crops, as written by the `crops` command."""

#: a progress callback: (done, total)
Progress = Callable[[int, int], None]

#: clips listed in the text summary before it refers to --json for the rest
LISTED_CLIPS = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``scan`` command."""
    parser.add_argument("input", type=Path, help="video file, or .npy uint8 (T, 96, 96) crops")
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        help="LipForensics checkpoint (e.g. the authors' lipforensics_ff.pth)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--stride",
        type=_positive_int,
        default=25,
        help="frames between clip starts (default 25: the paper's non-overlapping clips)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help="auto (default: TensorRT with a GPU, else ONNX Runtime), onnxruntime, torch or "
        "tensorrt; the ONNX export and engines are cached by the weights' hash",
    )


def run(args: argparse.Namespace) -> int:
    """Load the weights, read the crops, score every clip, print the report."""
    from calibration.thresholds import describe_thresholds, load_thresholds_for
    from engines.checkpoint import load_checkpoint

    if not args.input.exists():
        raise MediaError(f"input not found: {args.input} (expected a video file or .npy crops)")
    loaded = load_checkpoint(args.weights)  # before the slow part: fail fast on bad weights
    thresholds = load_thresholds_for(args.weights)
    backend = make_backend(loaded, args.backend)
    show_progress = not args.json and sys.stderr.isatty()

    started = time.perf_counter()
    with ProgressBar("mouth crops", enabled=show_progress) as bar:
        mouths = read_input(args.input, progress=bar)
    crops_s = time.perf_counter() - started
    starts = clip_starts(mouths.runs, CLIP_FRAMES, args.stride)
    if not starts:
        raise MediaError(_why_no_clips(args.input, mouths))
    if not args.json:
        print(describe_thresholds(thresholds), file=sys.stderr)
    with ProgressBar("network", enabled=show_progress) as bar:
        logits = score_clips(mouths.crops, starts, backend, progress=bar)
    network_s = time.perf_counter() - started - crops_s

    report = build_report(args, loaded, backend.name, mouths, starts, logits, thresholds)
    report["seconds"] = {"mouth_crops": round(crops_s, 3), "network": round(network_s, 3)}
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_summary(report))
    return 0


# --- reading the input -------------------------------------------------------------------


@dataclass(frozen=True)
class ScanInput:
    """Mouth crops to score: uint8 (N, 96, 96), their times, and runs of consecutive frames.

    Attributes:
        crops: uint8 (N, 96, 96), one per 25 fps frame with a face.
        pts: float64 (N,) seconds.
        runs: ``(start, stop)`` index ranges of consecutive 25 fps crops; clips stay inside.
        frames: 25 fps frames examined (with or without a face).
        problem: why decoding stopped early, else None.
    """

    crops: np.ndarray
    pts: np.ndarray
    runs: tuple[tuple[int, int], ...]
    frames: int
    problem: str | None = None


def read_input(path: Path, progress: Progress | None = None) -> ScanInput:
    """Crops of a video file (MediaPipe landmarks, reference smoothing) or of a .npy file.

    Raises:
        MediaError: unreadable file, wrong array, not a video.
    """
    if path.suffix.lower() == ".npy":
        return _read_npy(path)
    from stream.mouth import extract_mouth_crops

    mouths = extract_mouth_crops(path, smoothing="lookahead", progress=progress)
    return ScanInput(mouths.crops, mouths.pts, mouths.runs, mouths.frames, mouths.problem)


def _read_npy(path: Path) -> ScanInput:
    try:
        crops = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise MediaError(f"cannot read {path} as a .npy array: {error}") from None
    expected = (CROP_SIZE, CROP_SIZE)
    if not isinstance(crops, np.ndarray) or crops.ndim != 3 or crops.shape[1:] != expected:
        shape = getattr(crops, "shape", None)
        raise MediaError(f"{path} holds shape {shape}; expected mouth crops (T, 96, 96) uint8")
    if crops.dtype != np.uint8:
        raise MediaError(f"{path} holds {crops.dtype}; expected mouth crops (T, 96, 96) uint8")
    frames = len(crops)
    return ScanInput(crops, np.arange(frames) / FPS, ((0, frames),) if frames else (), frames)


def clip_starts(runs: tuple[tuple[int, int], ...], clip_frames: int, stride: int) -> list[int]:
    """Start index of every clip: every ``stride`` frames from the start of each run, as long
    as a whole clip fits in the run (leftover frames are dropped)."""
    return [first for start, stop in runs for first in range(start, stop - clip_frames + 1, stride)]


def _why_no_clips(path: Path, mouths: ScanInput) -> str:
    if not len(mouths.crops):
        detail = f"; {mouths.problem}" if mouths.problem else ""
        return f"no face found in {path} ({mouths.frames} frames at 25 fps{detail})"
    longest = max(stop - start for start, stop in mouths.runs)
    return (
        f"{path}: no 25 consecutive frames with a face (longest run {longest} frames); "
        "a clip needs 1 s of visible face at 25 fps"
    )


# --- running the network -----------------------------------------------------------------


def make_backend(loaded: LoadedCheckpoint, name: str = "torch") -> Backend:
    """The engine named ``name`` (see :data:`engines.backends.BACKENDS`) for the weights."""
    from engines.backends import backend_for_model
    from engines.export import file_sha256

    return backend_for_model(name, loaded.model, source_sha256=file_sha256(loaded.path))


def frame_requests(
    starts: list[int], clip_frames: int
) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Which frame features the clips need, each computed once.

    A frame's feature depends on the frames two either side *inside its clip* (zeros
    outside). Key ``(frame, first, stop)``: the frame and the range of real frames in its
    five-frame window. Interior frames have the same key in every overlapping clip; the two
    frames at each end of a clip get their own zero-padded key.

    Returns:
        (keys, layout): the distinct keys, and int64 (clips, clip_frames) indices into keys.
    """
    from engines.model import FRAME_CONTEXT

    index: dict[tuple[int, int, int], int] = {}
    layout = np.empty((len(starts), clip_frames), dtype=np.int64)
    for clip, start in enumerate(starts):
        stop = start + clip_frames
        for position, frame in enumerate(range(start, stop)):
            key = (frame, max(start, frame - FRAME_CONTEXT), min(stop, frame + FRAME_CONTEXT + 1))
            layout[clip, position] = index.setdefault(key, len(index))
    return list(index), layout


def score_clips(
    crops: np.ndarray,
    starts: list[int],
    backend: Backend,
    *,
    batch: int = 64,
    progress: Progress | None = None,
) -> np.ndarray:
    """Logits (float32, one per start) of the 25-frame clips of uint8 ``crops`` beginning at
    ``starts``: each needed frame feature is encoded once (exactly the paper's clip logit).

    ``backend`` is an :class:`engines.backends.Backend`; ``progress(done, total)`` is called
    after each batch.
    """
    from engines.model import FRAME_CONTEXT

    keys, layout = frame_requests(starts, CLIP_FRAMES)
    total = len(keys) + len(starts)
    features = []
    for first in range(0, len(keys), batch):
        chunk = keys[first : first + batch]
        low, high = min(k[1] for k in chunk), max(k[2] for k in chunk)
        frames = normalise_crops(crops[low:high])
        windows = np.zeros((len(chunk), 1, 2 * FRAME_CONTEXT + 1, INPUT_SIZE, INPUT_SIZE), "f4")
        for row, (frame, begin, end) in enumerate(chunk):
            offset = begin - (frame - FRAME_CONTEXT)
            windows[row, 0, offset : offset + end - begin] = frames[begin - low : end - low]
        features.append(backend.encode_frames(windows))
        if progress is not None:
            progress(first + len(chunk), total)
    features = np.concatenate(features)
    logits = []
    for first in range(0, len(starts), batch):
        logits.append(backend.head(features[layout[first : first + batch]]))
        if progress is not None:
            progress(len(keys) + min(first + batch, len(starts)), total)
    return np.concatenate(logits).astype(np.float32)


# --- the report --------------------------------------------------------------------------


def build_report(
    args: argparse.Namespace,
    loaded: LoadedCheckpoint,
    backend_name: str,
    mouths: ScanInput,
    starts: list[int],
    logits: np.ndarray,
    thresholds: Thresholds | None = None,
) -> dict[str, object]:
    """The JSON-ready result of a scan.

    With calibrated ``thresholds`` the fake probability uses their probability map, and the
    clip logits are replayed through the live alert policy: ``level`` is the highest level a
    viewer of this video would have seen and ``alerts`` how many alerts it would have raised
    (clips of different face runs are replayed as one sequence, as in the paper's protocol).
    """
    from stream.alerts import AlertPolicy, Level, PolicyConfig

    video_logit = float(logits.mean())
    warnings = list(loaded.notes)
    if mouths.problem:
        warnings.append(f"{mouths.problem}; scored the frames before it")
    policy = AlertPolicy(thresholds.policy_for(args.stride) if thresholds else PolicyConfig())
    decisions = [policy.update(float(x)) for x in logits]
    probability = (
        thresholds.probability(video_logit) if thresholds else 1.0 / (1.0 + math.exp(-video_logit))
    )
    return {
        "input": str(args.input),
        "weights": str(args.weights),
        "checkpoint_layout": loaded.layout,
        "backend": backend_name,
        "frames": mouths.frames,
        "frames_with_face": len(mouths.crops),
        "clip_frames": CLIP_FRAMES,
        "stride": args.stride,
        "clips": len(starts),
        "clip_starts": [round(float(mouths.pts[s]), 3) for s in starts],
        "clip_logits": [float(x) for x in logits],
        "video_logit": video_logit,
        "fake_probability": probability,
        "thresholds": str(thresholds.path) if thresholds else None,
        "level": str(max((d.level for d in decisions), default=Level.CLEAR)),
        "alerts": sum(d.alert for d in decisions),
        "warnings": warnings,
    }


def format_summary(report: dict[str, object]) -> str:
    """A few lines for people: the clips, their logits, and the video's score."""
    lines = [
        f"{report['input']}: {report['clips']} clips of {report['clip_frames']} frames, "
        f"stride {report['stride']} ({report['frames_with_face']} of {report['frames']} "
        "frames at 25 fps have a face)",
        "  clip   start    logit",
    ]
    listed = list(zip(report["clip_starts"], report["clip_logits"], strict=True))[:LISTED_CLIPS]
    lines += [f"  {i:4d}  {t:6.2f}s  {x:+7.3f}" for i, (t, x) in enumerate(listed, start=1)]
    if report["clips"] > LISTED_CLIPS:
        lines.append(f"  ... {report['clips'] - LISTED_CLIPS} more (see --json)")
    calibration = "calibrated" if report["thresholds"] else "uncalibrated; logit > 0 leans fake"
    lines.append(
        f"video logit {report['video_logit']:+.3f} -> fake probability "
        f"{report['fake_probability']:.3f} ({calibration}); highest level {report['level']}, "
        f"{report['alerts']} alert(s)"
    )
    return "\n".join(lines)


class ProgressBar:
    """A one-line progress bar on stderr, used as ``progress(done, total)``; a no-op when
    disabled."""

    WIDTH = 30

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self._drawn = label, enabled, False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = min(done / total, 1.0) if total else 0.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        count = f"{done}/{total}" if total else str(done)
        print(f"\r{self.label:>12} [{bar}] {count}", end="", file=sys.stderr, flush=True)
        self._drawn = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._drawn:
            print(file=sys.stderr)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
