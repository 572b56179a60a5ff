"""`scan`: score a video file (or a .npy of mouth crops) with LipForensics, clip by clip."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from engines.errors import MediaError
from engines.method import CLIP_FRAMES, CROP_SIZE, FPS

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
        help="auto (default: TensorRT with a GPU, else PyTorch FP16 on a CUDA GPU, else ONNX "
        "Runtime), onnxruntime, torch, torch-cuda or tensorrt; the ONNX export and engines are "
        "cached by the weights' hash",
    )


def run(args: argparse.Namespace) -> int:
    """Load the weights, then read the crops and score the clips as the input is decoded
    (memory does not grow with its length), and print the report."""
    from calibration.thresholds import describe_thresholds, load_thresholds_for
    from engines.checkpoint import load_checkpoint

    if not args.input.exists():
        raise MediaError(f"input not found: {args.input} (expected a video file or .npy crops)")
    loaded = load_checkpoint(args.weights)  # before the slow part: fail fast on bad weights
    thresholds = load_thresholds_for(args.weights)
    backend = make_backend(loaded, args.backend)
    show_progress = not args.json and sys.stderr.isatty()

    with ProgressBar("scan", enabled=show_progress) as bar:
        scanned = scan_source(open_input(args.input, progress=bar), backend, args.stride)
    if not scanned.clip_times:
        raise MediaError(_why_no_clips(args.input, scanned))
    if not args.json:
        print(describe_thresholds(thresholds), file=sys.stderr)

    report = build_report(args, loaded, backend.name, scanned, thresholds)
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_summary(report))
    return 0


# --- reading the input -------------------------------------------------------------------


class CropRecord(Protocol):
    """One mouth crop as a :class:`CropSource` yields it (:class:`stream.faces.reader.MouthCrop`
    is one): its time (seconds), uint8 (96, 96) crop, and run of consecutive frames."""

    @property
    def pts(self) -> float: ...

    @property
    def crop(self) -> np.ndarray: ...

    @property
    def run(self) -> int: ...


class CropSource(Protocol):
    """Mouth crops in frame order (iterate once). Afterwards ``frames`` holds the 25 fps
    frames examined and ``problem`` why decoding stopped early, else None."""

    frames: int
    problem: str | None

    def __iter__(self) -> Iterator[CropRecord]: ...


class FileCrop(NamedTuple):
    """One crop of a .npy file (all in run 0)."""

    pts: float
    crop: np.ndarray
    run: int


class CropsFile:
    """The crops of a .npy file, read frame by frame through a memory map: one run of
    consecutive 25 fps frames from 0 s.

    Raises:
        MediaError: unreadable file, or not a uint8 (T, 96, 96) array.
    """

    def __init__(self, path: Path, progress: Progress | None = None) -> None:
        try:
            crops = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise MediaError(f"cannot read {path} as a .npy array: {error}") from None
        expected = (CROP_SIZE, CROP_SIZE)
        if not isinstance(crops, np.ndarray) or crops.ndim != 3 or crops.shape[1:] != expected:
            shape = getattr(crops, "shape", None)
            raise MediaError(f"{path} holds shape {shape}; expected mouth crops (T, 96, 96) uint8")
        if crops.dtype != np.uint8:
            raise MediaError(f"{path} holds {crops.dtype}; expected mouth crops (T, 96, 96) uint8")
        self.crops, self.progress = crops, progress
        self.frames = len(crops)
        self.problem: str | None = None

    def __iter__(self) -> Iterator[FileCrop]:
        """The crops, each at its frame's time."""
        for index, crop in enumerate(self.crops):
            yield FileCrop(index / FPS, crop, 0)
            if self.progress is not None:
                self.progress(index + 1, self.frames)


def open_input(path: Path, progress: Progress | None = None) -> CropSource:
    """The crops of a video file (MediaPipe landmarks, reference smoothing) or of a .npy
    file, read as they are iterated; ``progress(done, expected)`` after each frame.

    Raises:
        MediaError: unreadable .npy or wrong array (now), or not a video (when iterated).
    """
    if path.suffix.lower() == ".npy":
        return CropsFile(path, progress)
    from stream.faces.reader import MouthCropReader

    return MouthCropReader(path, smoothing="lookahead", progress=progress)


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
    """All the crops of a video file or .npy file at once (see :func:`open_input`); `scan`
    itself streams them instead.

    Raises:
        MediaError: unreadable file, wrong array, not a video.
    """
    if path.suffix.lower() == ".npy":
        crops = CropsFile(path).crops
        frames = len(crops)
        return ScanInput(crops, np.arange(frames) / FPS, ((0, frames),) if frames else (), frames)
    from stream.faces.reader import extract_mouth_crops

    mouths = extract_mouth_crops(path, smoothing="lookahead", progress=progress)
    return ScanInput(mouths.crops, mouths.pts, mouths.runs, mouths.frames, mouths.problem)


# --- running the network -----------------------------------------------------------------


def make_backend(loaded: LoadedCheckpoint, name: str = "torch") -> Backend:
    """The engine named ``name`` (see :data:`engines.backends.BACKENDS`) for the weights."""
    from engines.backends import backend_for_model
    from engines.export import file_sha256

    return backend_for_model(name, loaded.model, source_sha256=file_sha256(loaded.path))


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes:
        clip_times: each clip's start (seconds).
        logits: float32, one per clip.
        frames: 25 fps frames examined (with or without a face).
        frames_with_face: the crops read.
        longest_run: the most consecutive frames with a face.
        problem: why decoding stopped early, else None.
        seconds: ``mouth_crops`` and ``network``: time spent reading crops and scoring.
    """

    clip_times: list[float]
    logits: np.ndarray
    frames: int
    frames_with_face: int
    longest_run: int
    problem: str | None
    seconds: dict[str, float]


def scan_source(
    source: CropSource, backend: Backend, stride: int, *, batch: int = 64
) -> ScanResult:
    """Score every clip of ``source`` while reading it (see :class:`StreamScorer`)."""
    from engines.clips import StreamScorer

    started = time.perf_counter()
    scorer = StreamScorer(backend, stride, batch=batch)
    for record in source:
        scorer.push(record.pts, record.crop, record.run)
    logits = scorer.finish()
    network = scorer.clips.seconds
    crops = time.perf_counter() - started - network
    return ScanResult(
        clip_times=scorer.clip_times,
        logits=logits,
        frames=source.frames,
        frames_with_face=scorer.frames_with_face,
        longest_run=scorer.longest_run,
        problem=source.problem,
        seconds={"mouth_crops": round(crops, 3), "network": round(network, 3)},
    )


def _why_no_clips(path: Path, scanned: ScanResult) -> str:
    if not scanned.frames_with_face:
        detail = f"; {scanned.problem}" if scanned.problem else ""
        return f"no face found in {path} ({scanned.frames} frames at 25 fps{detail})"
    return (
        f"{path}: no 25 consecutive frames with a face (longest run {scanned.longest_run} "
        "frames); a clip needs 1 s of visible face at 25 fps"
    )


# --- the report --------------------------------------------------------------------------


def build_report(
    args: argparse.Namespace,
    loaded: LoadedCheckpoint,
    backend_name: str,
    scanned: ScanResult,
    thresholds: Thresholds | None = None,
) -> dict[str, object]:
    """The JSON-ready result of a scan.

    With calibrated ``thresholds`` the fake probability uses their probability map, and the
    clip logits are replayed through the live alert policy: ``level`` is the highest level a
    viewer of this video would have seen and ``alerts`` how many alerts it would have raised
    (clips of different face runs are replayed as one sequence, as in the paper's protocol).
    """
    from calibration.policy import AlertPolicy, Level, PolicyConfig

    logits = scanned.logits
    video_logit = float(logits.mean())
    warnings = list(loaded.notes)
    if scanned.problem:
        warnings.append(f"{scanned.problem}; scored the frames before it")
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
        "frames": scanned.frames,
        "frames_with_face": scanned.frames_with_face,
        "clip_frames": CLIP_FRAMES,
        "stride": args.stride,
        "clips": len(logits),
        "clip_starts": [round(float(t), 3) for t in scanned.clip_times],
        "clip_logits": [float(x) for x in logits],
        "video_logit": video_logit,
        "fake_probability": probability,
        "thresholds": str(thresholds.path) if thresholds else None,
        "level": str(max((d.level for d in decisions), default=Level.CLEAR)),
        "alerts": sum(d.alert for d in decisions),
        "warnings": warnings,
        "seconds": scanned.seconds,
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
