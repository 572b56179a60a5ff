"""Flags that trade speed: the network's precision (``scan``, ``run``, ``serve``) and
hardware decoding (``run``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.detector import Detector
    from stream.settings.engine import EngineSettings


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--int8-calibration``."""
    from engines.precision import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="default: the backend's own (fp16 on the GPU backends torch-cuda and tensorrt, "
        "fp32 elsewhere); fp32; fp16; or int8: ONNX "
        "Runtime's INT8 frame encoder on the CPU (about 2.2x less encoder CPU), calibrated on "
        "genuine mouth crops, cached, and refused when its logits stray too far from FP32's "
        "(the error is printed; docs/benchmarks.md). Calibrate on your own cameras' footage: "
        "the default holds only for the demo. Which backend runs which: engines/registry.py",
    )
    parser.add_argument(
        "--int8-calibration",
        type=Path,
        metavar="CROPS.npy|VIDEO",
        help="genuine footage to calibrate INT8 on: crops saved by `crops --out`, or a video "
        "(default: the bundled genuine demo clip)",
    )


def add_hwaccel_argument(parser: argparse.ArgumentParser) -> None:
    """``--hwaccel``."""
    parser.add_argument(
        "--hwaccel",
        metavar="DEVICE",
        help="decode files and cameras on this FFmpeg device (cuda, vaapi, qsv, ...; "
        "default: software); streams the device cannot decode fall back to software",
    )


def with_int8_default(engine: EngineSettings) -> EngineSettings:
    """``engine`` with the bundled genuine clip as INT8 calibration when INT8 is asked for
    without calibration data."""
    if engine.precision != "int8" or engine.int8_calibration is not None:
        return engine
    from training.demo_detector import DEMO_GENUINE

    return replace(engine, int8_calibration=DEMO_GENUINE)


def print_precision(detector: Detector) -> None:
    """The INT8 network's check against FP32, on stderr, when it runs INT8."""
    if detector.int8 is not None:
        print(detector.int8.summary(), file=sys.stderr, flush=True)
