"""How far live landmark smoothing moves the mouth crops from the reference's look-ahead.

Usage: ``python bench/crop_smoothing.py [VIDEO ...]`` (default: the clips in ``media/``).
Landmarks are computed once per video; every smoothing variant then crops the same frames.
Prints one table: per variant, its latency, the mean absolute pixel difference of its
crops from the reference crops, and the offset of its crop centre from the reference's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.align import CROP_SIZE, apply_transform, mean_face, mouth_crop  # noqa: E402
from stream.clock import resample  # noqa: E402
from stream.landmarks import FaceLandmarks  # noqa: E402
from stream.smoothing import Smoothing, smooth  # noqa: E402
from stream.video_file import VideoFile  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "media"
VARIANTS = ("lookahead", "ahead:5", "ahead:2", "causal", "none")


def face_runs(path: Path) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Runs of consecutive 25 fps frames with a face: (RGB frames, landmarks (T, 68, 2))."""
    runs: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], [])]
    with VideoFile(path) as video, FaceLandmarks(num_faces=1) as landmarker:
        for tick in resample(video.frames()):
            faces = landmarker.detect(tick.item, tick.pts)
            if tick.restart or not faces:
                runs.append(([], []))
            if faces:
                runs[-1][0].append(tick.item)
                runs[-1][1].append(faces[0])
    return [(frames, np.array(points)) for frames, points in runs if frames]


def crops_of(runs, plan: Smoothing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops (N, 96, 96), transforms (N, 2, 3) and crop centres (N, 2) in aligned pixels."""
    reference = mean_face()
    crops, matrices, centres = [], [], []
    for frames, points in runs:
        for rgb, own, smoothed in zip(frames, points, smooth(points, plan), strict=True):
            crop, matrix, (top, left) = mouth_crop(rgb, own, smoothed, reference)
            crops.append(crop)
            matrices.append(matrix)
            centres.append((left + CROP_SIZE / 2, top + CROP_SIZE / 2))
    return np.array(crops), np.array(matrices), np.array(centres)


def centre_offsets(matrices, centres, ref_matrices, ref_centres) -> np.ndarray:
    """Distance from each crop's centre to the reference crop's, in reference crop pixels."""
    offsets = []
    for matrix, centre, ref_matrix, ref_centre in zip(
        matrices, centres, ref_matrices, ref_centres, strict=True
    ):
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        in_reference = apply_transform(ref_matrix, apply_transform(inverse, centre[None]))
        offsets.append(float(np.linalg.norm(in_reference[0] - ref_centre)))
    return np.array(offsets)


def main(videos: list[Path]) -> None:
    runs = [run for video in videos for run in face_runs(video)]
    results = {name: crops_of(runs, Smoothing.named(name)) for name in VARIANTS}
    ref_crops, ref_matrices, ref_centres = results["lookahead"]
    frames = len(ref_crops)
    within_run = np.ones(frames - 1, dtype=bool)
    within_run[np.cumsum([len(frames_) for frames_, _ in runs])[:-1] - 1] = False
    steps = np.abs(np.diff(ref_crops.astype(int), axis=0))[within_run]
    print(f"videos: {', '.join(v.name for v in videos)}; {frames} frames with a face at 25 fps")
    print(f"reference crops, consecutive frames: {steps.mean():.2f} gray levels mean abs diff\n")
    print("| smoothing | latency | mean abs diff (gray) | centre offset mean / p95 / max (px) |")
    print("|---|---|---|---|")
    for name in VARIANTS:
        crops, matrices, centres = results[name]
        difference = np.abs(crops.astype(int) - ref_crops.astype(int)).mean()
        offsets = centre_offsets(matrices, centres, ref_matrices, ref_centres)
        latency = Smoothing.named(name).ahead * 40
        print(
            f"| {name} | {latency} ms | {difference:.2f} | "
            f"{offsets.mean():.2f} / {np.percentile(offsets, 95):.2f} / {offsets.max():.2f} |"
        )


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or sorted(MEDIA.glob("*.mp4")))
