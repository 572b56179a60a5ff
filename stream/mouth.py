"""Mouth crops of a whole video file for LipForensics (offline scans).

The steps (see ``docs/crops.md``): 25 fps clock -> MediaPipe landmarks -> 68 iBUG points
-> smoothing (the reference's 12-frame look-ahead by default) -> similarity alignment to
the mean face -> 96 x 96 grayscale crop. The live pipeline's face stage runs the same
steps frame by frame with causal smoothing. The network's 88 x 88 centre crop and
normalisation come later (``engines/preprocess.py``).

Frames without a face are dropped: they split the crops into *runs* of consecutive 25 fps
frames (a clock break does too). Only form clips inside a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.align import CROP_SIZE, mean_face, mouth_crop
from stream.clock import resample
from stream.landmarks import MODEL_PATH, FaceLandmarks
from stream.smoothing import Smoother, Smoothing
from stream.video_file import VideoFile

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


def extract_mouth_crops(
    path: str | Path,
    *,
    smoothing: str = "lookahead",
    progress: Progress | None = None,
    model_path: str | Path = MODEL_PATH,
) -> MouthCrops:
    """The mouth crops of a video file (any frame rate, resampled to 25 fps by timestamp).

    Args:
        path: the video file.
        smoothing: ``"lookahead"`` (the reference, for offline scans), ``"causal"``,
            ``"ahead:N"`` or ``"none"`` (see :class:`Smoothing`).
        progress: called after each 25 fps frame with (done, expected).
        model_path: the MediaPipe Face Landmarker bundle.

    Raises:
        MediaError: missing file, not a video, no video stream.
        ValueError: unknown ``smoothing`` name.
    """
    plan = Smoothing.named(smoothing)
    with VideoFile(path) as video, FaceLandmarks(num_faces=1, model_path=model_path) as marks:
        expected = round(video.info.duration * 25)
        smoother: Smoother[tuple[float, np.ndarray, np.ndarray]] = Smoother(plan)
        runs = _RunCollector()
        frames = 0
        for frames, tick in enumerate(resample(video.frames()), start=1):
            faces = marks.detect(tick.item, tick.pts)
            if tick.restart or not faces:
                runs.add(smoother.flush())
                runs.end_run()
            if faces:
                runs.add(smoother.push(faces[0], (tick.pts, tick.item, faces[0])))
            if progress is not None:
                progress(frames, expected)
        runs.add(smoother.flush())
        runs.end_run()
        return runs.result(frames, video.problem)


class _RunCollector:
    """Turns smoothed frames into crops and remembers where each run starts and ends."""

    def __init__(self) -> None:
        self._reference = mean_face()
        self._records: list[tuple] = []
        self._runs: list[tuple[int, int]] = []
        self._start = 0

    def add(self, pairs: list[tuple[tuple[float, np.ndarray, np.ndarray], np.ndarray]]) -> None:
        """Crop each ``((pts, rgb, own landmarks), smoothed landmarks)`` pair."""
        for (pts, rgb, own), smoothed in pairs:
            crop, matrix, box = mouth_crop(rgb, own, smoothed, self._reference)
            self._records.append((pts, crop, own, matrix, box))

    def end_run(self) -> None:
        """Close the current run (if it holds any crop)."""
        if len(self._records) > self._start:
            self._runs.append((self._start, len(self._records)))
            self._start = len(self._records)

    def result(self, frames: int, problem: str | None) -> MouthCrops:
        """Everything collected, stacked."""
        columns = zip(*self._records, strict=True) if self._records else [()] * 5
        pts, crops, own, matrices, boxes = columns
        return MouthCrops(
            crops=np.array(crops, dtype=np.uint8).reshape(-1, CROP_SIZE, CROP_SIZE),
            pts=np.array(pts, dtype=np.float64),
            landmarks=np.array(own, dtype=np.float64).reshape(-1, 68, 2),
            transforms=np.array(matrices, dtype=np.float64).reshape(-1, 2, 3),
            boxes=np.array(boxes, dtype=np.int64).reshape(-1, 2),
            runs=tuple(self._runs),
            frames=frames,
            problem=problem,
        )
