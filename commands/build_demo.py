"""`build-demo`: rebuild the demo detector, its thresholds and the demo clips from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rebuild the demo detector and demo clips (training/demo/) from the bundled clips"
DESCRIPTION = """\
Rebuilds training/demo/: the demo detector, its thresholds and report, and the demo clips, from the
two bundled genuine clips (media/), with no other input: synthetic mouth manipulations of
one clip -> the real crop pipeline -> the network's narrow encoder trained from scratch ->
the paper's recipe (frozen encoder, MS-TCN head on cached features) -> thresholds from
genuine footage -> a check on the other clip with a manipulation type never trained on.
About 10-20 minutes on 2 CPU cores. See docs/demo_detector.md.

The result is a demo trained on synthetic manipulations, not a deepfake detector; real use
takes the authors' weights."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``build-demo`` command."""
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("build/demo"),
        help="keeps the synthetic videos and crops between runs (default build/demo)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Build; 0 when the held-out check passes (AUC >= 0.95, no alert on genuine video)."""
    from training.demo_detector import build_demo, report_passes

    report = build_demo(args.work_dir, seed=args.seed)
    passed, reason = report_passes(report)
    print(f"held-out check {'passed' if passed else 'FAILED'}: {reason}")
    return 0 if passed else 1
