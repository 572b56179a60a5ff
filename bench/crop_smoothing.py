"""How far live landmark smoothing moves the mouth crops from the reference's look-ahead.

Usage: ``python -m bench.crop_smoothing [VIDEO ...]`` (default: the clips in ``media/``).
Landmarks are computed once per video; every smoothing variant then crops the same frames.
Prints one table: per variant, its latency, the mean absolute pixel difference of its
crops from the reference crops, how far its crop centre and corners land from the
reference's, and its scale and rotation difference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stream.faces.align import CROP_SIZE, apply_transform, mean_face, mouth_crop
from stream.faces.landmarks import FaceLandmarks
from stream.faces.smoothing import Smoothing, smooth
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

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
    """Crops (N, 96, 96), transforms (N, 2, 3) and crop corners (N, 2) as (x, y) aligned
    pixels."""
    reference = mean_face()
    crops, matrices, corners = [], [], []
    for frames, points in runs:
        for rgb, own, smoothed in zip(frames, points, smooth(points, plan), strict=True):
            crop, matrix, (top, left) = mouth_crop(rgb, own, smoothed, reference)
            crops.append(crop)
            matrices.append(matrix)
            corners.append((left, top))
    return np.array(crops), np.array(matrices), np.array(corners, dtype=np.float64)


def shifts(variant, reference, offset: tuple[float, float]) -> np.ndarray:
    """Per frame, how far the variant's crop pixel at ``offset`` (x, y) lies from the
    reference's crop pixel at the same offset, in reference crop pixels (both taken back to
    the source frame and into the reference's aligned frame)."""
    out = []
    for matrix, corner, ref_matrix, ref_corner in zip(*variant[1:], *reference[1:], strict=True):
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        source = apply_transform(inverse, (corner + offset)[None])
        out.append(
            float(np.linalg.norm(apply_transform(ref_matrix, source)[0] - ref_corner - offset))
        )
    return np.array(out)


def scale_and_angle(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale factor and rotation (degrees) of each similarity."""
    a, b = matrices[:, 0, 0], matrices[:, 1, 0]
    return np.hypot(a, b), np.degrees(np.arctan2(b, a))


def main(videos: list[Path]) -> None:
    """Crop ``videos`` with every smoothing variant and print the table against the reference."""
    runs = [run for video in videos for run in face_runs(video)]
    results = {name: crops_of(runs, Smoothing.named(name)) for name in VARIANTS}
    reference = results["lookahead"]
    frames = len(reference[0])
    within_run = np.ones(frames - 1, dtype=bool)
    within_run[np.cumsum([len(frames_) for frames_, _ in runs])[:-1] - 1] = False
    steps = np.abs(np.diff(reference[0].astype(int), axis=0))[within_run]
    ref_scale, ref_angle = scale_and_angle(reference[1])
    half, last = CROP_SIZE / 2, CROP_SIZE - 1.0
    print(f"videos: {', '.join(v.name for v in videos)}; {frames} frames with a face at 25 fps")
    print(f"reference crops, consecutive frames: {steps.mean():.2f} gray levels mean abs diff\n")
    print(
        "| smoothing | latency | mean abs diff (gray) | centre offset mean / max (px) "
        "| corner shift mean / max (px) | scale diff mean (%) | rotation diff mean (deg) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        variant = results[name]
        difference = np.abs(variant[0].astype(int) - reference[0].astype(int)).mean()
        centre = shifts(variant, reference, (half, half))
        corners = np.mean(
            [shifts(variant, reference, (x, y)) for x in (0.0, last) for y in (0.0, last)], axis=0
        )
        scale, angle = scale_and_angle(variant[1])
        print(
            f"| {name} | {Smoothing.named(name).ahead * 40} ms | {difference:.2f} "
            f"| {centre.mean():.2f} / {centre.max():.2f} "
            f"| {corners.mean():.2f} / {corners.max():.2f} "
            f"| {np.abs(scale / ref_scale - 1).mean() * 100:.2f} "
            f"| {np.abs(angle - ref_angle).mean():.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="*", help="clips (default: media/*.mp4)")
    main(parser.parse_args().videos or sorted(MEDIA.glob("*.mp4")))
