"""The live face stage against its reference path: CPU per frame, and how far the crops move.

Usage: ``python -m bench.live_crops [VIDEO ...] [--frames N]`` (default: every bundled clip,
``tests/data/*.mp4`` and ``media/*.mp4``, whole). Each clip goes through
:class:`stream.faces.stage.FaceStage` twice: ``reference_path=True`` (the offline
reference's float64 warp, MediaPipe's public result objects: what the live stage did before)
and the default (OpenCV warp, landmarks read from MediaPipe's C result). Prints one table:

- *CPU ms/frame*: process CPU time per 25 fps frame (MediaPipe's own threads included);
- *ours ms/frame*: CPU time of the calling thread only, i.e. everything but MediaPipe's
  graph (which runs on MediaPipe's threads): result conversion, mapping, alignment, warp;
- *MAD*: mean absolute difference of the live crops from the reference path's, in gray
  levels (docs/crops.md bounds it at 0.5), and the largest difference of any pixel.

CPU time, not wall time: the figures hold on a machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

ROOT = Path(__file__).resolve().parents[1]


def frames_of(video: Path, limit: int | None) -> list:
    """The clip's 25 fps ticks (at most ``limit``)."""
    with VideoFile(video) as source:
        ticks = list(resample(source.frames()))
    return ticks[:limit]


def run_stage(ticks: list, reference_path: bool) -> tuple[dict, float, float]:
    """Crops by (frame, face), process CPU ms and calling-thread CPU ms per frame."""
    stage = FaceStage(reference_path=reference_path)
    stage.process(0, ticks[0].item, ticks[0].pts, True)  # graph set-up is not per frame
    crops = {}
    process, thread = time.process_time(), time.thread_time()
    for index, tick in enumerate(ticks[1:], start=1):
        for face in stage.process(index, tick.item, tick.pts, tick.restart).crops:
            crops[index, face.face] = face.crop
    process = 1000 * (time.process_time() - process) / (len(ticks) - 1)
    thread = 1000 * (time.thread_time() - thread) / (len(ticks) - 1)
    stage.close()
    return crops, process, thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="*")
    parser.add_argument("--frames", type=int, help="first N 25 fps frames of each clip")
    args = parser.parse_args()
    videos = args.videos or sorted([*ROOT.glob("tests/data/*.mp4"), *ROOT.glob("media/*.mp4")])
    print(f"# {len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(
        "| clip | frames | crops | CPU ms/frame ref | CPU ms/frame live | ours ms/frame ref "
        "| ours ms/frame live | MAD (gray levels) | max |"
    )
    print("|---" * 9 + "|")
    for video in videos:
        ticks = frames_of(video, args.frames)
        reference, ref_cpu, ref_ours = run_stage(ticks, reference_path=True)
        live, live_cpu, live_ours = run_stage(ticks, reference_path=False)
        both = sorted(reference.keys() & live.keys())
        if both:
            diff = np.abs(
                np.stack([live[k] for k in both]).astype(np.int16)
                - np.stack([reference[k] for k in both])
            )
            mad, worst = f"{diff.mean():.4f}", f"{diff.max()}"
        else:
            mad = worst = "-"
        unmatched = len(reference.keys() ^ live.keys())
        crops = f"{len(both)}" + (f" (+{unmatched} in one path only)" if unmatched else "")
        print(
            f"| {video.name} | {len(ticks)} | {crops} | {ref_cpu:.2f} | {live_cpu:.2f} "
            f"| {ref_ours:.2f} | {live_ours:.2f} | {mad} | {worst} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
