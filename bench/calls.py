"""Calls: does every face of a gallery get its verdicts, under one id?

Builds 1280x720 call galleries from the bundled clips (each person in a tile of their own,
letterboxed, looped) at a screen-share frame rate, runs ``run`` on them with default
settings (as fast as possible, or paced like a live call with ``--realtime``), and gives
per gallery: faces found, ids per tile (1 = every face kept its id), each tile's share of
the windows it could have had (worst and median), the longest interval between a face's
verdicts, and the run's wall time against the video's length.

Run: ``python -m bench.calls [--seconds 10] [--realtime] [--stride 5]
[--galleries 2x2@30,2x2@15,3x3@30,3x3@15] [--landmarks lite]`` (``--landmarks``: ``run``'s
landmark network).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from engines.method import FPS
from training.demo_detector import WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 720)


def clip_frames(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame of ``path`` letterboxed into ``size`` (w, h), RGB."""
    out = []
    with av.open(str(path)) as clip:
        for frame in clip.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            scale = min(size[0] / image.shape[1], size[1] / image.shape[0])
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            tile = np.zeros((size[1], size[0], 3), np.uint8)
            top, left = (size[1] - small.shape[0]) // 2, (size[0] - small.shape[1]) // 2
            tile[top : top + small.shape[0], left : left + small.shape[1]] = small
            out.append(tile)
    return out


def gallery(
    path: Path,
    side: int,
    faces: int,
    fps: int,
    seconds: float,
    videos: list[Path] | None = None,
    size: tuple[int, int] = SIZE,
) -> Path:
    """A side x side gallery of ``faces`` people (the last tiles empty) at ``fps``, each
    tile a video of ``videos`` (default: the bundled clips) letterboxed and looped, in a
    frame of ``size`` (w, h)."""
    videos = videos or sorted((ROOT / "media").glob("*.mp4"))[:faces]
    tile = (size[0] // side, size[1] // side)
    tiles = [clip_frames(video, tile) for video in videos]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps), options={"crf": "20"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for k in range(round(seconds * fps)):
            source = round(k / fps * FPS)  # the 25 fps clip frame shown at this instant
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            for n, frames in enumerate(tiles):
                row, col = divmod(n, side)
                image = frames[source % len(frames)]
                frame[row * tile[1] : (row + 1) * tile[1], col * tile[0] : (col + 1) * tile[0]] = (
                    image
                )
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def run(
    video: Path, realtime: bool, stride: int, weights: Path = WEIGHTS, landmarks: str = "full"
) -> tuple[list[dict], float]:
    """``run``'s events on ``video`` (default settings but the stride, ``weights`` and the
    landmark network) and its wall time."""
    command = [sys.executable, str(ROOT / "run_stream.py"), "run", str(video)]
    command += ["--weights", str(weights), "--jsonl", "-", "--stride", str(stride)]
    command += ["--landmarks", landmarks]
    command += ["--realtime"] if realtime else []
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()], time.monotonic() - began


def coverage(
    events: list[dict], side: int, faces: int, seconds: float, stride: int
) -> dict[str, object]:
    """Per tile: ids seen, verdicts against the windows it could have had, longest gap."""
    possible = int((seconds - 1.0) * FPS // stride) + 1
    tiles: dict[int, dict[str, list]] = {}
    for event in events:
        if event["type"] != "verdict":
            continue
        x0, y0, x1, y1 = event["box"]
        column, row = int((x0 + x1) / 2 * side), int((y0 + y1) / 2 * side)
        tile = tiles.setdefault(row * side + column, {"ids": [], "ends": []})
        tile["ids"].append(event["face"])
        tile["ends"].append(event["pts"][1])
    shares = [len(tiles.get(n, {"ends": []})["ends"]) / possible for n in range(faces)]
    gaps = [
        max(np.diff(sorted(t["ends"])), default=0.0) for t in tiles.values() if len(t["ends"]) > 1
    ]
    return {
        "found": sum(n in tiles for n in range(faces)),
        "ids": max((len(set(t["ids"])) for t in tiles.values()), default=0),
        "worst": min(shares),
        "median": statistics.median(shares),
        "gap": max(gaps, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--realtime", action="store_true", help="pace the file like a call")
    parser.add_argument("--galleries", default="2x2@30,2x2@15,3x3@30,3x3@15")
    parser.add_argument("--stride", type=int, default=5, help="frames between windows")
    parser.add_argument("--landmarks", default="full", choices=("full", "lite"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spec in args.galleries.split(","):
            layout, fps = spec.split("@")
            side = int(layout.split("x")[0])
            faces = 4 if side == 2 else side * side - 1
            video = gallery(Path(folder) / f"{spec}.mp4", side, faces, int(fps), args.seconds)
            events, wall = run(video, args.realtime, args.stride, landmarks=args.landmarks)
            found = coverage(events, side, faces, args.seconds, args.stride)
            rows.append((spec, faces, found, wall))
    pace = "paced like a call (--realtime)" if args.realtime else "as fast as possible"
    print(
        f"{args.seconds:.0f} s galleries of the bundled clips at 1280x720, run {pace}, "
        f"stride {args.stride}, {args.landmarks} landmarks"
    )
    print(
        "| gallery @ fps | faces | found | ids per tile (most) | windows covered, worst | "
        "median | longest interval (s) | wall time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for spec, faces, c, wall in rows:
        print(
            f"| {spec} | {faces} | {c['found']} | {c['ids']} | {100 * c['worst']:.0f}% | "
            f"{100 * c['median']:.0f}% | {c['gap']:.1f} | {wall:.1f} |"
        )


if __name__ == "__main__":
    main()
