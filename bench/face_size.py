"""How small may a face be? Mouth crops and logits against face height.

Each bundled clip is scaled down step by step and placed in a 1280x720 gray frame (a tile
of a call's gallery would be), then run through the live face stage. For each face
height the table gives how many frames had the face found, the mean absolute difference of
its mouth crops from the crops of the full-size clip (gray levels; frame by frame), and
the shift of the demo network's clip logits from the full-size clip's (mean and largest
absolute). A 60 px face has a mouth about 20 px wide, which the crop blows up to 88.

Run: ``python -m bench.face_size [--clips N] [--frames N]``.
"""

from __future__ import annotations

import argparse
import tempfile
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from bench.scan_crops import clip_logits
from engines.method import FPS
from stream.detector import Detector
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile
from training.demo_detector import WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
HEIGHTS = (240, 160, 120, 100, 80, 70, 60, 50, 40)
CANVAS = (1280, 720)


def clip_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``video`` at 25 fps, RGB."""
    with VideoFile(video) as source:
        return [tick.item for tick in islice(resample(source.frames()), count)]


def live_crops(images: list[np.ndarray]) -> tuple[list[np.ndarray | None], list[float]]:
    """The first face's mouth crop per frame (None where none was found) and its height
    in pixels per frame where found."""
    stage = FaceStage()
    crops: list[np.ndarray | None] = []
    heights: list[float] = []
    try:
        for index, image in enumerate(images):
            faces = stage.process(index, image, index / FPS, index == 0).crops
            crops.append(faces[0].crop if faces else None)
            if faces:
                top, bottom = faces[0].box[1], faces[0].box[3]
                heights.append((bottom - top) * image.shape[0])
    finally:
        stage.close()
    return crops, heights


def placed(images: list[np.ndarray], scale: float) -> list[np.ndarray]:
    """``images`` scaled by ``scale`` and centred in a gray 1280x720 frame."""
    width, height = CANVAS
    out = []
    for image in images:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        small = small[:height, :width]
        frame = np.full((height, width, 3), 128, np.uint8)
        top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
        frame[top : top + small.shape[0], left : left + small.shape[1]] = small
        out.append(frame)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100, help="frames per clip (25 fps)")
    args = parser.parse_args()
    videos = sorted((ROOT / "media").glob("*.mp4"))[: args.clips]
    detector = Detector.load(WEIGHTS, backend="onnxruntime")
    rows: dict[int, list[tuple[float, float, np.ndarray]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for video in videos:
            images = clip_frames(video, args.frames)
            full, full_heights = live_crops(images)
            if not full_heights or any(crop is None for crop in full):
                continue
            reference = np.stack(full)
            reference_logits = clip_logits(detector, reference, Path(folder))
            face_height = float(np.median(full_heights))
            for target in HEIGHTS:
                crops, _ = live_crops(placed(images, target / face_height))
                found = [c is not None for c in crops]
                filled = np.stack(
                    [c if c is not None else np.zeros_like(reference[0]) for c in crops]
                )
                seen = np.array(found)
                error = (
                    float(np.abs(filled[seen].astype(np.int16) - reference[seen]).mean())
                    if seen.any()
                    else float("nan")
                )
                shift = clip_logits(detector, filled, Path(folder)) - reference_logits
                rows.setdefault(target, []).append((float(seen.mean()), error, shift))
    detector.close()
    print(f"{len(videos)} clips, {args.frames} frames each, live face stage, demo detector")
    print(
        "| face height (px, in 1280x720) | frames with the face | crop difference (gray levels) "
        "| logit shift, mean | logit shift, largest |"
    )
    print("|---|---|---|---|---|")
    for target, values in rows.items():
        seen, errors, shifts = zip(*values, strict=True)
        every = np.concatenate(shifts)
        print(
            f"| {target} | {100 * np.mean(seen):.0f}% | {np.nanmean(errors):.1f} | "
            f"{every.mean():+.2f} | {np.abs(every).max():.2f} |"
        )


if __name__ == "__main__":
    main()
