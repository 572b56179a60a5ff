"""How to bring 10-24 fps input to the network's 25 fps: repetition, blending or motion.

The network was trained on 25 fps video. A shared tab or a congested WebRTC link delivers
fewer frames; the 25 fps clock then has to fill the gaps. For genuine 25 fps clips (the
bundled ones) this takes the true mouth crops, keeps only the frames a camera running at
10, 15 or 20 fps would have delivered, brings them back to 25 fps three ways, and compares
each with the true crops:

- ``repeat``: the nearest delivered frame (what the clock did until now);
- ``blend``: the two delivered frames around each 25 fps instant, weighted by time;
- ``motion``: the same two frames warped towards that instant along their optical flow
  (OpenCV's Farneback), then weighted by time.

Columns: mean absolute difference from the true crops (gray levels), the mean
frame-to-frame change relative to the true crops' (1.00 = the mouth moves as much as in
the true video; repeated frames move less), and the shift of the demo network's clip
logits (mean and largest absolute).

Run: ``python -m bench.frame_rate [--clips N]``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.scan_crops import clip_logits
from engines.method import FPS
from stream.detector import Detector
from stream.faces.reader import extract_mouth_crops
from training.demo_detector import WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
RATES = (10.0, 15.0, 20.0)

Filler = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def repeat(before: np.ndarray, after: np.ndarray, alpha: float) -> np.ndarray:
    """The nearer of the two delivered frames (a tie goes to the earlier)."""
    return after if alpha > 0.5 else before


def blend(before: np.ndarray, after: np.ndarray, alpha: float) -> np.ndarray:
    """The two delivered frames mixed by their distance in time."""
    mixed = (1 - alpha) * before.astype(np.float32) + alpha * after.astype(np.float32)
    return np.clip(mixed.round(), 0, 255).astype(np.uint8)


def motion(before: np.ndarray, after: np.ndarray, alpha: float) -> np.ndarray:
    """Both frames warped along their optical flow to the instant between them, mixed."""
    if alpha in (0.0, 1.0):
        return before if alpha == 0.0 else after
    flow = cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    alpha = np.float32(alpha)
    height, width = before.shape
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    from_before = cv2.remap(
        before,
        grid_x - alpha * flow[..., 0],
        grid_y - alpha * flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    from_after = cv2.remap(
        after,
        grid_x + (1 - alpha) * flow[..., 0],
        grid_y + (1 - alpha) * flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return blend(from_before, from_after, alpha)


FILLERS: dict[str, Filler] = {"repeat": repeat, "blend": blend, "motion": motion}


def lowered_and_restored(crops: np.ndarray, rate: float, fill: Filler) -> np.ndarray:
    """``crops`` (25 fps) as a ``rate`` fps camera would deliver them, back at 25 fps."""
    seconds = len(crops) / FPS
    delivered_times = np.arange(0.0, seconds, 1.0 / rate)
    delivered = [crops[min(len(crops) - 1, round(t * FPS))] for t in delivered_times]
    out = []
    for index in range(len(crops)):
        t = index / FPS
        k = min(int(np.searchsorted(delivered_times, t, side="right")) - 1, len(delivered) - 1)
        if k + 1 >= len(delivered):
            out.append(delivered[k])
            continue
        span = delivered_times[k + 1] - delivered_times[k]
        out.append(fill(delivered[k], delivered[k + 1], (t - delivered_times[k]) / span))
    return np.stack(out)


def movement(crops: np.ndarray) -> float:
    """Mean absolute change between consecutive crops (gray levels)."""
    return float(np.abs(np.diff(crops.astype(np.float32), axis=0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=9, help="how many bundled clips")
    args = parser.parse_args()
    videos = sorted((ROOT / "media").glob("*.mp4"))[: args.clips]
    detector = Detector.load(WEIGHTS, backend="onnxruntime")
    rows: dict[tuple[float, str], list[tuple[float, float, np.ndarray]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for video in videos:
            true = extract_mouth_crops(video).crops
            true_logits = clip_logits(detector, true, Path(folder))
            true_movement = movement(true)
            for rate in RATES:
                for name, fill in FILLERS.items():
                    restored = lowered_and_restored(true, rate, fill)
                    error = float(np.abs(restored.astype(np.float32) - true).mean())
                    shift = clip_logits(detector, restored, Path(folder)) - true_logits
                    rows.setdefault((rate, name), []).append(
                        (error, movement(restored) / true_movement, shift)
                    )
    detector.close()
    print(f"{len(videos)} genuine clips ({', '.join(v.stem for v in videos)}), demo detector")
    print(
        "| input fps | to 25 fps by | difference from true crops | movement vs true "
        "| logit shift, mean | logit shift, largest |"
    )
    print("|---|---|---|---|---|---|")
    for (rate, name), values in rows.items():
        errors, moves, shifts = zip(*values, strict=True)
        every = np.concatenate(shifts)
        print(
            f"| {rate:.0f} | {name} | {np.mean(errors):.2f} | {np.mean(moves):.2f} | "
            f"{every.mean():+.2f} | {np.abs(every).max():.2f} |"
        )


if __name__ == "__main__":
    main()
