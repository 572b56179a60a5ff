"""`build-demo`: rebuild the demo detector, its thresholds and the demo clips from scratch."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from commands.progress import ProgressBar

HELP = "rebuild the demo detector and demo clips (training/demo/) from the bundled clips"
DESCRIPTION = """\
Rebuilds training/demo/: the demo detector, its thresholds and report, and the demo clips,
from the bundled genuine clips of seven people (media/), with no other input. The detector
is the people cross-validation's fold that holds out P1, the person the demo clips show:
five people train it (synthetic mouth manipulations of their clips -> the real crop
pipeline -> the network's narrow encoder trained from scratch -> the paper's recipe: frozen
encoder, MS-TCN head on cached features), a sixth, never trained on, picks the head's epoch,
and its thresholds and probability map come from the cross-fold rule that people-cv fitted
on every fold's held-out person (training/demo/cross_fold_rule.json). Prints a table per
person and per manipulation on P1. About 5-10 minutes on 2 CPU cores. See
docs/demo_detector.md.

The result is a demo trained on synthetic manipulations, not a deepfake detector; real use
takes the authors' weights."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``build-demo`` command."""
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("build/demo"),
        help="keeps the 25 fps stretches, synthetic videos and crops between runs "
        "(default build/demo)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where the detector, thresholds, report and demo clips go (default: "
        "WORK_DIR/candidate, copied into training/demo/ only when the held-out check passes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Build; 0 when the held-out check passes (no alert on the held-out person's genuine
    footage, mean clip AUC >= 0.8 on their manipulations, demo clips as expected). Without
    ``--out-dir`` the build goes to WORK_DIR/candidate first and replaces the shipped files
    only when it passes."""
    from commands.progress import ProgressBar
    from training.demo_build import build_demo, install_build, report_passes
    from training.demo_detector import DEMO_DIR

    out_dir = args.out_dir or args.work_dir / "candidate"
    with ProgressBar("build-demo", unit="step") as bar:
        report = build_demo(args.work_dir, out_dir, seed=args.seed, log=steps(bar))
    passed, reason = report_passes(report)
    print(f"held-out check {'passed' if passed else 'FAILED'}: {reason}")
    if args.out_dir is None:
        if passed:
            install_build(out_dir, DEMO_DIR)
        print(f"installed into {DEMO_DIR}" if passed else f"NOT installed; kept in {out_dir}")
    return 0 if passed else 1


def steps(bar: ProgressBar) -> Callable[[str], None]:
    """A log for :func:`build_demo`: each line printed above ``bar``, which advances at
    each ``N/M`` step line."""

    def log(line: str) -> None:
        bar.write(line)
        step = re.match(r"(\d+)/(\d+) ", line)
        if step:
            bar(int(step[1]) - 1, int(step[2]))

    return log
