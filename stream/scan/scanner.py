"""Scanning a file the paper's way: mouth crops at 25 fps, consecutive 25-frame clips, one
logit per clip, the video logit their mean; then the clip logits replayed through the live
alert policy.

The input is a video file (MediaPipe landmarks with the reference's look-ahead smoothing) or
a .npy uint8 (T, 96, 96) array of ready crops (as the ``crops`` command writes); it is read
as it is scored, so memory does not grow with its length.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from engines.clips import StreamScorer
from engines.method import CLIP_FRAMES, CROP_SIZE, FPS, normalise_crops, sigmoid
from errors import MediaError
from stream.alerts.policy import PolicyConfig, replay

if TYPE_CHECKING:
    from calibration.thresholds import Thresholds
    from engines.backends import Backend
    from stream.faces.reader import Progress

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
    frames examined, ``crowded`` how many of the ``sampled`` ones showed more than one face
    (one face is scored), and ``problem`` why decoding stopped early, else None."""

    frames: int
    sampled: int
    crowded: int
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
        self.sampled = self.crowded = 0  # one mouth per crop
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


def read_input(path: Path, progress: Progress | None = None, landmarks: str = "full") -> ScanInput:
    """All the crops of a video file or .npy file at once (see :func:`open_input`), a
    video's with the landmark network ``landmarks``; `scan` itself streams them instead.

    Raises:
        MediaError: unreadable file, wrong array, not a video.
    """
    if path.suffix.lower() == ".npy":
        crops = CropsFile(path).crops
        frames = len(crops)
        return ScanInput(crops, np.arange(frames) / FPS, ((0, frames),) if frames else (), frames)
    from stream.faces.reader import extract_mouth_crops

    mouths = extract_mouth_crops(
        path, smoothing="lookahead", progress=progress, landmarks=landmarks
    )
    return ScanInput(mouths.crops, mouths.pts, mouths.runs, mouths.frames, mouths.problem)


# --- running the network -----------------------------------------------------------------


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
        sampled, crowded: frames looked at for more faces, and those that showed more than
            one (one face was scored).
    """

    clip_times: list[float]
    logits: np.ndarray
    frames: int
    frames_with_face: int
    longest_run: int
    problem: str | None
    seconds: dict[str, float]
    sampled: int = 0
    crowded: int = 0


def scan_source(
    source: CropSource,
    backend: Backend,
    stride: int,
    *,
    batch: int = 64,
    preprocess: Callable[[np.ndarray], np.ndarray] = normalise_crops,
) -> ScanResult:
    """Score every clip of ``source`` while reading it (see :class:`StreamScorer`);
    ``preprocess`` turns uint8 crops into the network's input (the weights')."""
    started = time.perf_counter()
    scorer = StreamScorer(backend, stride, batch=batch, preprocess=preprocess)
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
        sampled=source.sampled,
        crowded=source.crowded,
    )


def why_no_clips(path: Path, scanned: ScanResult) -> str:
    """Why a scan of ``path`` found no clip to score, in one line."""
    if not scanned.frames_with_face:
        detail = f"; {scanned.problem}" if scanned.problem else ""
        return f"no face found in {path} ({scanned.frames} frames at 25 fps{detail})"
    return (
        f"{path}: no 25 consecutive frames with a face (longest run {scanned.longest_run} "
        "frames); a clip needs 1 s of visible face at 25 fps"
    )


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanReport:
    """What a scan concluded (JSON: :meth:`to_dict`, the ``scan --json`` document).

    Attributes:
        input, weights: what was scanned, with which weights.
        checkpoint_layout: how the weight file was laid out (see engines.checkpoint).
        backend: the engine that ran.
        frames, frames_with_face: 25 fps frames examined, and those with a face.
        clip_frames, stride: frames per clip and between clip starts.
        clips: how many clips were scored.
        clip_starts, clip_logits: each clip's start (seconds) and logit.
        video_logit: the mean clip logit (> 0 leans fake).
        fake_probability: the video logit through the calibrated map (else the sigmoid).
        probability_map: whether ``fake_probability`` came from a map fitted on fakes
            (``calibrate --fake``); otherwise it is only the sigmoid of the logit.
        thresholds: the thresholds file used, or None (uncalibrated defaults).
        level: the highest level a viewer of this video would have seen.
        escalate_windows: consecutive clips past a threshold before the level rises.
        alerts: the alerts it would have raised.
        warnings: what the user should know (a cut-short file, a re-initialised head).
        seconds: time spent reading crops and running the network.
        faces: each face's own scan when the file shows several people
            (:mod:`stream.scan.faces`; the fields above are the main face's), else empty.
    """

    input: str
    weights: str
    checkpoint_layout: str
    backend: str
    frames: int
    frames_with_face: int
    clip_frames: int
    stride: int
    clips: int
    clip_starts: list[float]
    clip_logits: list[float]
    video_logit: float
    fake_probability: float
    probability_map: bool
    thresholds: str | None
    level: str
    escalate_windows: int
    alerts: int
    warnings: list[str]
    seconds: dict[str, float]
    faces: list[dict[str, object]] = field(default_factory=list)

    @property
    def probability(self) -> float:
        """The video's fake probability (see :attr:`fake_probability`)."""
        return self.fake_probability

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form."""
        return asdict(self)


def report_scan(
    scanned: ScanResult,
    *,
    input: str | Path,
    weights: str | Path,
    checkpoint_layout: str,
    backend: str,
    stride: int,
    thresholds: Thresholds | None = None,
    notes: tuple[str, ...] = (),
) -> ScanReport:
    """The conclusion of a scan.

    With calibrated ``thresholds`` the fake probability uses their probability map, and the
    clip logits are replayed through the live alert policy: ``level`` is the highest level a
    viewer of this video would have seen and ``alerts`` how many alerts it would have raised
    (clips of different face runs are replayed as one sequence, as in the paper's protocol).
    """
    logits = scanned.logits
    video_logit = float(logits.mean())
    warnings = list(notes)
    if scanned.problem:
        warnings.append(f"{scanned.problem}; scored the frames before it")
    if scanned.crowded:
        warnings.append(
            f"{scanned.crowded} of {scanned.sampled} frames looked at (one a second) show more "
            "than one face: the clip logits above are the main face's; every face's own are "
            "under 'faces'"
        )
    config = thresholds.policy_for(stride) if thresholds else PolicyConfig()
    level, alerts = replay(logits, config)
    probability = thresholds.probability if thresholds else sigmoid
    return ScanReport(
        input=str(input),
        weights=str(weights),
        checkpoint_layout=checkpoint_layout,
        backend=backend,
        frames=scanned.frames,
        frames_with_face=scanned.frames_with_face,
        clip_frames=CLIP_FRAMES,
        stride=stride,
        clips=len(logits),
        clip_starts=[round(float(t), 3) for t in scanned.clip_times],
        clip_logits=[float(x) for x in logits],
        video_logit=video_logit,
        fake_probability=float(probability(video_logit)),
        probability_map=thresholds is not None and (thresholds.scale, thresholds.bias) != (1, 0),
        thresholds=str(thresholds.path) if thresholds else None,
        level=str(level),
        escalate_windows=config.escalate_windows,
        alerts=alerts,
        warnings=warnings,
        seconds=scanned.seconds,
    )
