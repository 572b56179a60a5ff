"""`scan`: score a video file (or a .npy of mouth crops) with LipForensics, clip by clip."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from commands.options import add_triton_arguments, positive_int, setting_flags
from commands.progress import ProgressBar
from commands.speed_options import (
    add_precision_arguments,
    print_precision,
    with_int8_default,
)

if TYPE_CHECKING:
    from stream.scan.scanner import ScanReport

HELP = "score a video (or .npy mouth crops) for forgery: one logit per 25-frame clip"
DESCRIPTION = """\
Score a video with LipForensics the way the paper does: mouth crops at 25 fps, consecutive
non-overlapping 25-frame clips (leftover frames dropped, clips never span a frame without a
face), one logit per clip, the video logit is their mean. Logit > 0 leans fake; it is not a
calibrated decision.

INPUT is a video file (any frame rate, resampled to 25 fps by timestamp) or a .npy uint8
array (T, 96, 96) of ready mouth crops, as written by the `crops` command."""

#: clips listed in the text summary before it refers to --json for the rest
LISTED_CLIPS = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``scan`` command."""
    parser.add_argument("input", type=Path, help="video file, or .npy uint8 (T, 96, 96) crops")
    parser.add_argument(
        "--weights",
        type=Path,
        help="LipForensics checkpoint (e.g. the authors' lipforensics_ff.pth); required but "
        "with --backend triton",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--stride",
        type=positive_int,
        default=25,
        help="frames between clip starts (default 25: the paper's non-overlapping clips)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help="auto (default: TensorRT with a GPU, else PyTorch FP16 on a CUDA GPU, else ONNX "
        "Runtime), onnxruntime, torch, torch-cuda, tensorrt, or triton (a Triton server at "
        "--triton-url); the ONNX export and engines are cached by the weights' hash",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="HTML",
        help="also write a self-contained HTML report for people: verdict, timeline of clip "
        "probabilities, the most suspicious clip's mouth crops and frames, settings (reads "
        "that clip of the input a second time)",
    )
    add_triton_arguments(parser)
    add_precision_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Load the weights, then read the crops and score the clips as the input is decoded
    (memory does not grow with its length), and print the report."""
    from commands.writable import check_writable
    from engines.method import CLIP_FRAMES
    from errors import LipForensicsError
    from stream.detector import Detector
    from stream.scan.report_html import write_scan_report
    from stream.settings.pipeline import Settings

    if args.stride > CLIP_FRAMES:
        raise LipForensicsError(
            f"--stride must be 1..{CLIP_FRAMES} (a longer one leaves frames unscored), "
            f"got {args.stride}"
        )
    if args.report:
        check_writable(args.report, "--report")
    engine = Settings.of(
        **setting_flags(args, "engine"),
        inference_threads=len(os.sched_getaffinity(0)),  # all cores: nothing else runs
    ).engine
    detector = Detector.from_settings(with_int8_default(engine))
    print_precision(detector)
    with ProgressBar("scan", enabled=not args.json) as bar:
        report = detector.scan(args.input, stride=args.stride, progress=bar)
    if not args.json:
        print(detector.thresholds_note, file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(report.to_dict()) if args.json else format_summary(report), flush=True)
    if args.report:  # after the verdict: a report that fails to write does not hide it
        write_scan_report(
            args.report,
            report,
            probability=detector.probability,
            policy=detector.policy_for(args.stride),
            warning=detector.card.disclaimer if detector.card else None,
        )
    return 0


def format_summary(report: ScanReport) -> str:
    """A few lines for people: the clips, their logits, and the video's score."""
    lines = [
        f"{report.input}: {report.clips} clips of {report.clip_frames} frames, "
        f"stride {report.stride} ({report.frames_with_face} of {report.frames} "
        "frames at 25 fps have a face)",
        "  clip   start    logit",
    ]
    listed = list(zip(report.clip_starts, report.clip_logits, strict=True))[:LISTED_CLIPS]
    lines += [f"  {i:4d}  {t:6.2f}s  {x:+7.3f}" for i, (t, x) in enumerate(listed, start=1)]
    if report.clips > LISTED_CLIPS:
        lines.append(f"  ... {report.clips - LISTED_CLIPS} more (see --json)")
    if report.probability_map:
        mapped = f"fake probability {report.fake_probability:.3f} (calibrated map)"
    else:
        mapped = (
            f"sigmoid {report.fake_probability:.3f} (not a calibrated fake probability: "
            "no map fitted on fakes; logit > 0 leans fake)"
        )
    thresholds = "calibrated" if report.thresholds else "uncalibrated"
    lines += [
        f"video logit {report.video_logit:+.3f} -> {mapped}",
        f"live alert policy ({thresholds} thresholds) over the {report.clips} clip(s): highest "
        f"level {report.level}, {report.alerts} alert(s); a level needs "
        f"{report.escalate_windows} clips in a row past its threshold",
    ]
    return "\n".join(lines)
