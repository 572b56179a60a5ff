"""Mouth crops of a whole video file for LipForensics (offline scans).

The steps (see ``docs/crops.md``): 25 fps clock -> MediaPipe's landmarks (the landmark
engine, :mod:`stream.faces.engine`, tracking one face as MediaPipe's one-face
``FaceLandmarker`` does) -> 68 iBUG points -> smoothing (the reference's 12-frame
look-ahead by default) -> similarity alignment to the mean face -> 96 x 96 grayscale crop.
The live pipeline's face stage runs the same steps frame by frame without smoothing. The
network's 88 x 88 centre crop and normalisation come later (``engines/method.py``).

Frames without a face are dropped: they split the crops into *runs* of consecutive 25 fps
frames (a clock break does too). Only form clips inside a run.

:class:`MouthCropReader` yields the crops one by one as the video is decoded (memory does
not grow with the video's length); :func:`extract_mouth_crops` collects them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np

from engines.method import CROP_SIZE, FPS
from stream.faces.align import mean_face, mouth_crop
from stream.faces.detection import detect, whole_frame
from stream.faces.engine import StreamFaces
from stream.faces.landmarks import to_ibug68
from stream.faces.models import FaceModels
from stream.faces.networks import BUNDLE_PATH
from stream.faces.smoothing import Smoother, Smoothing
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

#: a progress callback: (frames done, frames expected; 0 when unknown).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class MouthCrops:
    """The mouth crops of one video at 25 fps.

    Attributes:
        crops: uint8 (N, 96, 96), one per 25 fps frame in which a face was found.
        pts: float64 (N,), the time (seconds) of each crop's frame.
        landmarks: float64 (N, 68, 2), each frame's unsmoothed iBUG points (source pixels).
        transforms: float64 (N, 2, 3), each frame's source -> aligned (256 x 256) similarity.
        boxes: int64 (N, 2), each crop's top-left (row, col) in the aligned frame.
        runs: ``(start, stop)`` index ranges into ``crops`` of consecutive 25 fps frames;
            a frame without a face or a gap in the video ends a run.
        frames: 25 fps frames examined, with or without a face.
        problem: why decoding stopped early (corrupt or truncated file), else None.
    """

    crops: np.ndarray
    pts: np.ndarray
    landmarks: np.ndarray
    transforms: np.ndarray
    boxes: np.ndarray
    runs: tuple[tuple[int, int], ...]
    frames: int
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class MouthCrop:
    """The mouth crop of one 25 fps frame with a face.

    Attributes:
        pts: the frame's time (seconds).
        crop: uint8 (96, 96).
        run: which run of consecutive frames it belongs to (0, 1, ...; see the module).
        landmarks: float64 (68, 2), the frame's unsmoothed iBUG points (source pixels).
        transform: float64 (2, 3), the source -> aligned (256 x 256) similarity.
        box: the crop's top-left (row, col) in the aligned frame.
    """

    pts: float
    crop: np.ndarray
    run: int
    landmarks: np.ndarray
    transform: np.ndarray
    box: tuple[int, int]


class MouthCropReader:
    """The mouth crops of a video file, yielded as the frames are decoded.

    Iterate once; afterwards :attr:`frames` holds the 25 fps frames examined (with or
    without a face) and :attr:`problem` why decoding stopped early, else None. Only the
    smoothing window's frames are held at a time.

    One face is cropped (tracked as MediaPipe's one-face ``FaceLandmarker`` tracks it, as
    the reference does: the detector on the whole frame only while no face is tracked).
    The detector looks at the whole frame for more faces once a second: :attr:`sampled`
    frames were looked at, :attr:`crowded` of them showed more than one face.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        smoothing: str = "lookahead",
        progress: Progress | None = None,
        model_path: str | Path = BUNDLE_PATH,
        landmarks: str = "full",
    ) -> None:
        """Check ``smoothing`` (ValueError when unknown); the file is opened on iteration.

        Args:
            path: the video file (any frame rate, resampled to 25 fps by timestamp).
            smoothing: ``"lookahead"`` (the reference, for offline scans), ``"causal"``,
                ``"ahead:N"`` or ``"none"`` (see :class:`Smoothing`).
            progress: called after each 25 fps frame with (done, expected).
            model_path: the MediaPipe Face Landmarker bundle (its detector and landmark
                networks are run).
            landmarks: the landmark network, ``"full"`` (the bundle's) or ``"lite"``
                (:class:`stream.faces.models.FaceModels`).
        """
        self.path, self.model_path, self.landmarks = path, model_path, landmarks
        self.progress = progress
        self.plan = Smoothing.named(smoothing)
        self.frames = 0
        self.sampled = self.crowded = 0
        self.problem: str | None = None
        self._run = 0
        self._run_used = False

    def __iter__(self) -> Iterator[MouthCrop]:
        """The crops in frame order; raises MediaError when the file cannot be opened."""
        self.frames, self.sampled, self.crowded, self.problem = 0, 0, 0, None
        self._run, self._run_used = 0, False
        reference = mean_face()
        models = FaceModels(self.model_path, landmarks=self.landmarks)
        faces = StreamFaces(max_faces=1, smallest_face=0, search_frames=0)
        with VideoFile(self.path) as video:
            expected = round(video.info.duration * FPS)
            smoother: Smoother[tuple[float, np.ndarray, np.ndarray]] = Smoother(self.plan)
            for tick in resample(video.frames()):
                self.frames += 1
                if tick.restart:
                    faces.reset()
                found = faces.track(models, tick.item, tick.pts)
                if self.frames % FPS == 1:  # once a second: is anyone else in the picture?
                    self.sampled += 1
                    height, width = tick.item.shape[:2]
                    others = detect(models.detector, tick.item, [whole_frame(width, height)])
                    self.crowded += len(others) > 1
                if tick.restart or not found:
                    yield from self._crops(smoother.flush(), reference)
                    self._end_run()
                if found:
                    own = to_ibug68(found[0].mesh)
                    pushed = smoother.push(own, (tick.pts, tick.item, own))
                    yield from self._crops(pushed, reference)
                if self.progress is not None:
                    self.progress(self.frames, expected)
            yield from self._crops(smoother.flush(), reference)
            self.problem = video.problem

    def _crops(
        self,
        pairs: list[tuple[tuple[float, np.ndarray, np.ndarray], np.ndarray]],
        reference: np.ndarray,
    ) -> Iterator[MouthCrop]:
        """Crop each ``((pts, rgb, own landmarks), smoothed landmarks)`` pair."""
        for (pts, rgb, own), smoothed in pairs:
            crop, matrix, box = mouth_crop(rgb, own, smoothed, reference)
            self._run_used = True
            yield MouthCrop(pts, crop, self._run, own, matrix, box)

    def _end_run(self) -> None:
        """The next crop starts a new run (if the current one holds any crop)."""
        if self._run_used:
            self._run, self._run_used = self._run + 1, False


def extract_mouth_crops(
    path: str | Path,
    *,
    smoothing: str = "lookahead",
    progress: Progress | None = None,
    model_path: str | Path = BUNDLE_PATH,
    landmarks: str = "full",
) -> MouthCrops:
    """The mouth crops of a whole video file, in memory; the arguments are
    :class:`MouthCropReader`'s.

    Raises:
        MediaError: missing file, not a video, no video stream.
        ValueError: unknown ``smoothing`` name.
    """
    reader = MouthCropReader(
        path, smoothing=smoothing, progress=progress, model_path=model_path, landmarks=landmarks
    )
    found = list(reader)
    return MouthCrops(
        crops=np.array([c.crop for c in found], dtype=np.uint8).reshape(-1, CROP_SIZE, CROP_SIZE),
        pts=np.array([c.pts for c in found], dtype=np.float64),
        landmarks=np.array([c.landmarks for c in found], dtype=np.float64).reshape(-1, 68, 2),
        transforms=np.array([c.transform for c in found], dtype=np.float64).reshape(-1, 2, 3),
        boxes=np.array([c.box for c in found], dtype=np.int64).reshape(-1, 2),
        runs=_spans([c.run for c in found]),
        frames=reader.frames,
        problem=reader.problem,
    )


def _spans(labels: list[int]) -> tuple[tuple[int, int], ...]:
    """``(start, stop)`` index ranges of equal consecutive ``labels``."""
    spans, start = [], 0
    for _, group in groupby(labels):
        stop = start + sum(1 for _ in group)
        spans.append((start, stop))
        start = stop
    return tuple(spans)
