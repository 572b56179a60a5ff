"""PyTorch eager speed of the LipForensics network on this machine (random weights, FP32).

Prints one table: seconds per 25-frame clip for the whole network at batch 1 and 8, and the
two stages the live pipeline runs separately (frame-once encoder per frame, temporal head
per window). Wall seconds: median and best of ``--repeats`` timed calls after ``--warmup``
untimed ones. Core seconds: this process's CPU time per clip (median), which other programs
on a shared machine inflate far less than wall time.

    .venv/bin/python -m bench.model [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from engines.method import CLIP_FRAMES, INPUT_SIZE
from engines.model import LipForensics


def timed(call: Callable[[], object], warmup: int, repeats: int) -> tuple[float, float, float]:
    """(median wall, best wall, median CPU) seconds of ``call``."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LipForensics().eval()
    size, frames = INPUT_SIZE, CLIP_FRAMES

    cases = []  # (label, batch, 25-frame clips per call, function)
    for batch in (1, 8):
        clips = torch.randn(batch, 1, frames, size, size)
        cases.append(("whole network", batch, batch, lambda c=clips: model(c)))
    windows = torch.randn(frames, 1, 5, size, size)
    encode = model.encoder.encode_frames
    cases.append(("encoder, frame-once (25 frames)", frames, 1, lambda: encode(windows)))
    for batch in (1, 8):
        features = torch.randn(batch, frames, model.config.feature_dim)
        cases.append(("temporal head", batch, batch, lambda f=features: model.head(f)))

    print(
        f"LipForensics, PyTorch {torch.__version__} eager FP32, {args.threads} threads, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    header = ("stage", "batch", "s/clip (median)", "s/clip (best)", "core-s/clip")
    row = "| {:<31} | {:>5} | {:>15} | {:>13} | {:>11} |"
    print(row.format(*header))
    print(row.format(*["-" * len(h) if i else "-" * 31 for i, h in enumerate(header)]))
    with torch.inference_mode():
        for label, batch, clips, call in cases:
            median, best, cpu = (t / clips for t in timed(call, args.warmup, args.repeats))
            print(row.format(label, batch, f"{median:.3f}", f"{best:.3f}", f"{cpu:.3f}"))


if __name__ == "__main__":
    main()
