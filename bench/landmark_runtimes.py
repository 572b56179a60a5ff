"""LiteRT against ONNX Runtime for the two face networks, paired: CPU per image, same process.

Usage: ``python -m bench.landmark_runtimes [--rounds 40] [--repeats 5]``

Each round runs every variant of a network on the same batch of real inputs, in a shuffled
order, ``--repeats`` calls each, timed by the calling thread's CPU clock (every runtime on
one thread); a variant's row gives its median CPU ms per image over the rounds and its
median ratio to LiteRT's time *in the same round* (with the quartiles of that ratio), so
the machine's load, which moves from round to round, weighs on both sides of each ratio.

Inputs: the landmark network's real 256 x 256 regions cut by the engine while tracking
``tests/data/two_faces.mp4`` (:func:`bench.landmark_levers.regions`), and the detector's
128 x 128 search tiles of the same clip. Variants: LiteRT XNNPACK (today's, the bundled
``.tflite``); ONNX Runtime on the converted model (:mod:`stream.faces.tflite_onnx`); the
same with every ``PRelu`` as ``(1 - a) * relu(x) + a * x``, the products as 1 x 1
depthwise convolutions (:func:`bench.landmark_levers.prelu_rewritten`) or as ``Mul`` nodes;
the convolution form with ONNX Runtime's graph optimizations at ``extended`` (no NCHWc
layout) instead of ``all``. Every ONNX Runtime session: one intra-op thread, sequential
execution. Largest landmark difference from LiteRT, in input pixels, is printed per variant.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import numpy as np

from bench.landmark_levers import prelu_rewritten, regions
from stream.faces.detection import tile_inputs, tiles
from stream.faces.models import FaceModels
from stream.faces.networks import DETECTOR, LANDMARKS, bundled_model
from stream.faces.tflite_onnx import INPUT_NAME, cached_onnx
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "two_faces.mp4"
#: (uint8 images) -> the network's outputs
Runner = Callable[[np.ndarray], list[np.ndarray]]


def session(path: Path, level: str = "all") -> Runner:
    """An ONNX Runtime runner: one intra-op thread, sequential, optimizations at ``level``."""
    import onnxruntime

    levels = onnxruntime.GraphOptimizationLevel
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {
        "all": levels.ORT_ENABLE_ALL,
        "extended": levels.ORT_ENABLE_EXTENDED,
    }[level]
    options.log_severity_level = 3
    ran = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda images: ran.run(None, {INPUT_NAME: images})


def paired(runners: dict[str, Runner], images: np.ndarray, batch: int, rounds: int, repeats: int):
    """Per variant: (median CPU ms per image, median, 25th and 75th percentile of its
    ratio to the first variant's time in the same round)."""
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        run(np.ascontiguousarray(images[:batch]))  # warm-up
    for index in range(rounds):
        start = index * batch % (len(images) - batch + 1)
        chosen = np.ascontiguousarray(images[start : start + batch])
        for name in rng.permutation(list(runners)):
            began = time.thread_time()
            for _ in range(repeats):
                runners[name](chosen)
            times[name].append(1000 * (time.thread_time() - began) / repeats / batch)
    first = np.array(next(iter(times.values())))
    rows = {}
    for name, values in times.items():
        ratio = np.array(values) / first
        rows[name] = (float(np.median(values)), *np.quantile(ratio, [0.5, 0.25, 0.75]))
    return rows


def search_tiles(count: int = 10) -> np.ndarray:
    """The detector's inputs for every search tile of the clip's first ``count`` frames."""
    with VideoFile(CLIP) as source:
        frames = [tick.item for tick in islice(resample(source.frames()), count)]
    height, width = frames[0].shape[:2]
    return np.concatenate([tile_inputs(frame, tiles(width, height, 60)) for frame in frames])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="paired rounds per batch size")
    parser.add_argument("--repeats", type=int, default=5, help="calls per variant and round")
    args = parser.parse_args()
    print(f"# load average before {os.getloadavg()[0]:.1f}")
    litert = FaceModels(runtime="litert")
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        converted = {
            n.name: cached_onnx(bundled_model(n.name), n, cache) for n in (DETECTOR, LANDMARKS)
        }
        marks = converted[LANDMARKS.name]
        convs = prelu_rewritten(marks, cache / "prelu_as_convs.onnx")
        networks = {
            LANDMARKS.name: (
                regions(CLIP, 60),
                (1, 4),
                {
                    "LiteRT XNNPACK (today)": litert.landmarks.run,
                    "ONNX Runtime, PRelu": session(marks),
                    "ONNX Runtime, PRelu as 1x1 depthwise convs": session(convs),
                    "ONNX Runtime, PRelu as Muls": session(
                        prelu_rewritten(marks, cache / "prelu_as_muls.onnx", as_convs=False)
                    ),
                    "ONNX Runtime, PRelu as convs, optimizations 'extended'": session(
                        convs, "extended"
                    ),
                },
            ),
            DETECTOR.name: (
                search_tiles(),
                (1, 2, 8),
                {
                    "LiteRT XNNPACK (today)": litert.detector.run,
                    "ONNX Runtime": session(converted[DETECTOR.name]),
                },
            ),
        }
        print(
            "| network | batch | runtime | CPU ms per image (median) | ratio to LiteRT, "
            "paired (median) | quartiles | largest output difference |"
        )
        print("|---" * 7 + "|")
        for network, (images, batches, runners) in networks.items():
            reference = next(iter(runners.values()))(images[:8])
            for batch in batches:
                rows = paired(runners, images, batch, args.rounds, args.repeats)
                for name, (ms, ratio, low, high) in rows.items():
                    found = runners[name](images[:8])
                    worst = float(np.abs(found[0] - reference[0]).max())
                    print(
                        f"| {network} | {batch} | {name} | {ms:.2f} | {ratio:.3f} "
                        f"| {low:.3f}-{high:.3f} | {worst:.5f} |",
                        flush=True,
                    )
    print(f"# load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
