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
    """One mouth crop as a :class:`CropSource` yields it (:class:`stream.mouth.MouthCrop`
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
    from stream.mouth import MouthCropReader

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
    from stream.mouth import extract_mouth_crops

    mouths = extract_mouth_crops(path, smoothing="lookahead", progress=progress)
    return ScanInput(mouths.crops, mouths.pts, mouths.runs, mouths.frames, mouths.problem)


def clip_starts(runs: tuple[tuple[int, int], ...], clip_frames: int, stride: int) -> list[int]:
    """Start index of every clip: every ``stride`` frames from the start of each run, as long
    as a whole clip fits in the run (leftover frames are dropped)."""
    return [first for start, stop in runs for first in range(start, stop - clip_frames + 1, stride)]


# --- running the network -----------------------------------------------------------------

#: a frame feature: (frame, first, stop), the frame and the real frames of its window
FrameKey = tuple[int, int, int]


def make_backend(loaded: LoadedCheckpoint, name: str = "torch") -> Backend:
    """The engine named ``name`` (see :data:`engines.backends.BACKENDS`) for the weights."""
    from engines.backends import backend_for_model
    from engines.export import file_sha256

    return backend_for_model(name, loaded.model, source_sha256=file_sha256(loaded.path))


def clip_keys(start: int, clip_frames: int) -> list[FrameKey]:
    """The frame features of the clip beginning at ``start`` (see :func:`frame_requests`)."""
    from engines.model import FRAME_CONTEXT

    stop = start + clip_frames
    return [
        (frame, max(start, frame - FRAME_CONTEXT), min(stop, frame + FRAME_CONTEXT + 1))
        for frame in range(start, stop)
    ]


def frame_requests(starts: list[int], clip_frames: int) -> tuple[list[FrameKey], np.ndarray]:
    """Which frame features the clips need, each computed once.

    A frame's feature depends on the frames two either side *inside its clip* (zeros
    outside). Key ``(frame, first, stop)``: the frame and the range of real frames in its
    five-frame window. Interior frames have the same key in every overlapping clip; the two
    frames at each end of a clip get their own zero-padded key.

    Returns:
        (keys, layout): the distinct keys, and int64 (clips, clip_frames) indices into keys.
    """
    index: dict[FrameKey, int] = {}
    layout = np.empty((len(starts), clip_frames), dtype=np.int64)
    for clip, start in enumerate(starts):
        layout[clip] = [index.setdefault(key, len(index)) for key in clip_keys(start, clip_frames)]
    return list(index), layout


class ClipScorer:
    """Logits of 25-frame clips added one at a time, each frame feature encoded once
    (:func:`frame_requests`): exactly the paper's clip logits.

    Frame features are encoded in batches of ``batch`` and clips go through the head in
    batches of ``batch``, both in the order the clips were added, so the batches (and the
    logits, bit for bit) are the same however the adding is spread out. Only what queued
    clips still need is kept. Add clips in increasing start order: a feature is shared only
    with clips added after it and starting at or before its frame.
    """

    def __init__(
        self, backend: Backend, frames: Callable[[int, int], np.ndarray], *, batch: int = 64
    ) -> None:
        """``frames(low, high)``: uint8 crops low .. high - 1; asked only for frames of clips
        already added, from :meth:`needs_from` on."""
        self.backend, self.frames, self.batch = backend, frames, batch
        self.seconds = 0.0  # spent preparing and running the network
        self._shared: dict[FrameKey, int] = {}  # features later clips may need: key -> number
        self._pending: list[FrameKey] = []  # not encoded yet, numbered from self._encoded on
        self._encoded = 0
        self._features: dict[int, np.ndarray] = {}
        self._queued: list[list[int]] = []  # feature numbers of the clips before the head
        self._logits: list[np.ndarray] = []

    def add(self, start: int) -> None:
        """Queue the clip of frames ``start`` .. ``start + 24``; scores full batches."""
        self._shared = {key: n for key, n in self._shared.items() if key[0] >= start}
        row = []
        for key in clip_keys(start, CLIP_FRAMES):
            if key not in self._shared:
                self._shared[key] = self._encoded + len(self._pending)
                self._pending.append(key)
            row.append(self._shared[key])
        self._queued.append(row)
        self._score(final=False)

    def needs_from(self) -> int | None:
        """The first frame that queued clips still need, or None when they need none."""
        return min((key[1] for key in self._pending), default=None)

    def finish(self) -> np.ndarray:
        """Score the rest; the float32 logits of every clip added, in order."""
        self._score(final=True)
        return np.concatenate([np.zeros(0, np.float32), *self._logits]).astype(np.float32)

    def _score(self, final: bool) -> None:
        started = time.perf_counter()
        while len(self._pending) >= self.batch or (final and self._pending):
            self._encode(self._pending[: self.batch])
            del self._pending[: self.batch]
        while len(self._queued) >= self.batch or (final and self._queued):
            clips = self._queued[: self.batch]
            if max(max(row) for row in clips) >= self._encoded:
                break
            features = np.stack([np.stack([self._features[n] for n in row]) for row in clips])
            self._logits.append(self.backend.head(features))
            del self._queued[: self.batch]
            needed = {n for row in self._queued for n in row} | set(self._shared.values())
            self._features = {n: f for n, f in self._features.items() if n in needed}
        self.seconds += time.perf_counter() - started

    def _encode(self, keys: list[FrameKey]) -> None:
        from engines.model import FRAME_CONTEXT

        low, high = min(k[1] for k in keys), max(k[2] for k in keys)
        frames = normalise_crops(self.frames(low, high))
        windows = np.zeros((len(keys), 1, 2 * FRAME_CONTEXT + 1, INPUT_SIZE, INPUT_SIZE), "f4")
        for row, (frame, begin, end) in enumerate(keys):
            offset = begin - (frame - FRAME_CONTEXT)
            windows[row, 0, offset : offset + end - begin] = frames[begin - low : end - low]
        features = self.backend.encode_frames(windows)
        self._features.update((self._encoded + i, f) for i, f in enumerate(features))
        self._encoded += len(keys)


def score_clips(
    crops: np.ndarray, starts: list[int], backend: Backend, *, batch: int = 64
) -> np.ndarray:
    """Logits (float32, one per start) of the 25-frame clips of uint8 ``crops`` beginning at
    ``starts``: each needed frame feature is encoded once (exactly the paper's clip logit).

    ``backend`` is an :class:`engines.backends.Backend`; see :class:`ClipScorer`.
    """
    scorer = ClipScorer(backend, lambda low, high: crops[low:high], batch=batch)
    for start in starts:
        scorer.add(start)
    return scorer.finish()


class StreamScorer:
    """Scores the clips of mouth crops pushed in frame order, holding only the frames still
    needed, however long the input: fewer than ``batch * stride + 25`` within one run, and
    fewer than ``batch * (stride + 24)`` across runs (the features of fewer than ``batch``
    frames wait to be encoded, each clip brings at least one, and consecutive clips start
    at most ``stride + 24`` frames apart).

    Clips start every ``stride`` frames from the start of each run and never span runs (as
    :func:`clip_starts` on the whole input); the logits equal :func:`score_clips`'s bit for
    bit.
    """

    def __init__(self, backend: Backend, stride: int, *, batch: int = 64) -> None:
        self.stride = stride
        self.clips = ClipScorer(backend, self._window, batch=batch)
        self.clip_times: list[float] = []  # each clip's start (seconds)
        self.frames_with_face = 0  # crops pushed
        self.longest_run = 0
        self._crops: list[np.ndarray] = []  # crops self._first .. self.frames_with_face - 1
        self._times: list[float] = []
        self._first = 0
        self._run: int | None = None
        self._run_start = 0
        self._next = 0  # where the next clip starts

    @property
    def buffered(self) -> int:
        """Crops held now."""
        return len(self._crops)

    def push(self, pts: float, crop: np.ndarray, run: int) -> None:
        """The next crop (uint8 (96, 96)), its time and run; scores full batches of clips."""
        if run != self._run:
            self._run, self._run_start = run, self.frames_with_face
            self._next = self.frames_with_face
        self._crops.append(crop)
        self._times.append(pts)
        self.frames_with_face += 1
        self.longest_run = max(self.longest_run, self.frames_with_face - self._run_start)
        if self.frames_with_face - self._next == CLIP_FRAMES:
            self.clip_times.append(self._times[self._next - self._first])
            self.clips.add(self._next)
            self._next += self.stride
        needed = self.clips.needs_from()
        keep = self._next if needed is None else min(needed, self._next)
        drop = min(keep - self._first, len(self._crops))
        del self._crops[:drop], self._times[:drop]
        self._first += drop

    def finish(self) -> np.ndarray:
        """Score the clips still queued; the float32 logits of every clip, in order."""
        return self.clips.finish()

    def _window(self, low: int, high: int) -> np.ndarray:
        return np.stack(self._crops[low - self._first : high - self._first])


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
    from stream.alerts import AlertPolicy, Level, PolicyConfig

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
