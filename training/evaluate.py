"""Score sets of videos the way ``calibrate`` and ``evaluate`` need them.

A video becomes :class:`FaceLogits`: the logits of its 25-frame windows every ``stride``
frames, one sequence per *run* of consecutive frames with a face (a window never spans a
frame without a face, and the live pipeline starts a face's windows afresh after it was
lost). Its video logit is the mean of its non-overlapping clip logits (the paper's protocol).

Perturbed copies (robustness study) are written losslessly to a temporary file and scored
like any video, so landmarks run on the perturbed frames, as in the paper.
"""

from __future__ import annotations

import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calibration.metrics import Interval, accuracy_at, bootstrap_auc
from engines.method import CLIP_FRAMES
from errors import MediaError
from training.perturbations import perturb

if TYPE_CHECKING:
    from engines.backends import Backend

MILLISECOND = Fraction(1, 1000)


@dataclass(frozen=True, slots=True)
class FaceLogits:
    """The window logits of one video.

    Attributes:
        path: the video.
        stride: frames between window starts.
        runs: one float32 array of window logits per run of consecutive face frames.
        frames: 25 fps frames examined.
        problem: why the video could not be (fully) scored, else None.
    """

    path: Path
    stride: int
    runs: tuple[np.ndarray, ...]
    frames: int
    problem: str | None = None

    @property
    def windows(self) -> int:
        """How many windows were scored."""
        return sum(len(run) for run in self.runs)

    def video_logit(self) -> float:
        """Mean of the non-overlapping 25-frame clip logits (needs a stride dividing 25)."""
        step = CLIP_FRAMES // self.stride
        if self.stride * step != CLIP_FRAMES:
            raise ValueError(f"stride {self.stride} does not divide {CLIP_FRAMES}")
        return float(np.mean(np.concatenate([run[::step] for run in self.runs])))


def list_videos(directory: Path) -> list[Path]:
    """The video (and ``.npy`` crop) files directly inside ``directory``, sorted.

    Raises:
        MediaError: not a directory, or no video in it.
    """
    from stream.sources.video_file import VIDEO_SUFFIXES

    if not directory.is_dir():
        raise MediaError(f"not a directory: {directory} (expected a folder of videos)")
    videos = sorted(p for p in directory.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise MediaError(f"no videos in {directory} (expected {', '.join(VIDEO_SUFFIXES)})")
    return videos


def score_video(path: Path, backend: Backend, stride: int, landmarks: str = "full") -> FaceLogits:
    """Window logits of one video file (or ``.npy`` crops), frame-once encoded; a video's
    crops made with the landmark network ``landmarks``.

    A video in which no 25 consecutive frames show a face gives no runs and a ``problem``;
    a missing or unreadable file raises :class:`MediaError`.
    """
    from engines.clips import clip_starts, score_clips
    from stream.scan.scanner import read_input

    mouths = read_input(path, landmarks=landmarks)
    runs = []
    for run in mouths.runs:
        starts = clip_starts((run,), stride)
        if starts:
            runs.append(score_clips(mouths.crops, starts, backend))
    problem = mouths.problem
    if not runs:
        problem = f"{path}: no 25 consecutive 25 fps frames with a face"
    return FaceLogits(path, stride, tuple(runs), mouths.frames, problem)


def score_videos(
    paths: Iterable[Path],
    backend: Backend,
    stride: int,
    on_video: Callable[[FaceLogits], None] | None = None,
    landmarks: str = "full",
) -> list[FaceLogits]:
    """:func:`score_video` for each path; ``on_video`` is told of each result as it comes."""
    results = []
    for path in paths:
        result = score_video(path, backend, stride, landmarks)
        if on_video is not None:
            on_video(result)
        results.append(result)
    return results


def log_video(kind: str) -> Callable[[FaceLogits], None]:
    """A :func:`score_videos` callback printing one line per video to stderr."""

    def log(video: FaceLogits) -> None:
        detail = f"; {video.problem}" if video.problem else ""
        print(f"  {kind}: {video.path} ({video.windows} windows{detail})", file=sys.stderr)

    return log


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Video-level results of a detector on real (0) and fake (1) videos.

    Attributes:
        video_logits: one per scored video.
        labels: 1 = fake.
        auc: AUC with a 95% bootstrap interval.
        accuracy: accuracy at ``threshold`` (video logit >= threshold = fake).
        threshold: the decision threshold used for ``accuracy``.
        skipped: videos that could not be scored (no face), with the reason.
    """

    video_logits: np.ndarray
    labels: np.ndarray
    auc: Interval
    accuracy: float
    threshold: float
    skipped: tuple[str, ...]


def evaluate_logits(
    real: list[FaceLogits], fake: list[FaceLogits], threshold: float, seed: int = 0
) -> Evaluation:
    """AUC (bootstrap CI) and accuracy over the videos that have at least one clip.

    Raises:
        MediaError: fewer than one scored real or fake video.
    """
    scored = [(v, 0) for v in real if v.runs] + [(v, 1) for v in fake if v.runs]
    skipped = tuple(v.problem or str(v.path) for v in [*real, *fake] if not v.runs)
    labels = np.array([label for _, label in scored], dtype=np.int64)
    if labels.sum() == 0 or (1 - labels).sum() == 0:
        raise MediaError("evaluation needs at least one real and one fake video with a face")
    logits = np.array([v.video_logit() for v, _ in scored])
    return Evaluation(
        video_logits=logits,
        labels=labels,
        auc=bootstrap_auc(logits, labels, seed=seed),
        accuracy=accuracy_at(logits, labels, threshold),
        threshold=threshold,
        skipped=skipped,
    )


def perturbed_copy(source: Path, name: str, level: int, seed: int, folder: Path) -> Path:
    """Write ``source`` with perturbation ``name`` at ``level`` to a lossless file (FFV1 in
    Matroska, original timestamps) in ``folder``, seeded by :func:`video_seed` so each
    video gets its own reproducible random draw."""
    import av

    from stream.sources.video_file import VideoFile

    target = folder / f"{source.stem}.{name}{level}.mkv"
    with VideoFile(source) as video:
        timestamps: list[float] = []
        frames = _remember_pts(video.frames(), timestamps)
        with av.open(str(target), "w") as out:
            stream = None
            for index, rgb in enumerate(perturb(frames, name, level, video_seed(source, seed))):
                if stream is None:
                    stream = out.add_stream("ffv1")
                    stream.height, stream.width = rgb.shape[:2]
                    stream.pix_fmt = "bgr0"
                    stream.codec_context.time_base = stream.time_base = MILLISECOND
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = round(timestamps[index] * 1000)
                frame.time_base = stream.time_base
                for packet in stream.encode(frame):
                    out.mux(packet)
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
    return target


def video_seed(path: Path, seed: int) -> int:
    """The perturbation seed of one video: ``seed`` mixed with its file name."""
    return seed * 1_000_003 + zlib.crc32(path.name.encode())


def _remember_pts(
    frames: Iterable[tuple[float, np.ndarray]], pts: list[float]
) -> Iterator[np.ndarray]:
    """The frames' pixels, noting each frame's timestamp in ``pts`` as it passes."""
    for stamp, rgb in frames:
        pts.append(stamp)
        yield rgb


def score_perturbed(
    paths: list[Path], backend: Backend, name: str, level: int, seed: int = 0
) -> list[FaceLogits]:
    """Non-overlapping clip logits of each video after perturbing its full frames."""
    with tempfile.TemporaryDirectory(prefix="lipforensics-perturb-") as folder:
        results = []
        for path in paths:
            if path.suffix.lower() == ".npy":
                raise MediaError(f"{path}: perturbations need videos, not mouth crops")
            copy = perturbed_copy(path, name, level, seed, Path(folder))
            result = score_video(copy, backend, CLIP_FRAMES)
            copy.unlink()
            results.append(replace(result, path=path))
        return results
