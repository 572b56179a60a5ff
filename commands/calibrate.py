"""`calibrate`: choose alert thresholds from genuine footage; save them next to the weights."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calibration.thresholds import Thresholds

HELP = "choose alert thresholds from genuine videos (and a probability map from fakes)"
DESCRIPTION = """\
Score genuine videos window by window (25 frames every --stride) and choose the alert
policy's thresholds and hysteresis so that replaying those windows through the live alert
policy meets the false-alert target per face-hour. With too little genuine footage to show
the target, a conservative rule is used instead (alert threshold above the largest genuine
logit plus a margin) and the output says how many face-hours the choice rests on.

With --fake videos as well, a logit -> probability map (Platt scaling) is fitted and its
calibration error reported, with a reliability diagram.

Writes <weights without suffix>.thresholds.json next to the weights; scan, run and serve
load it automatically. docs/calibration.md describes the rules and the file."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``calibrate`` command."""
    parser.add_argument("--weights", type=Path, required=True, help="LipForensics checkpoint")
    parser.add_argument(
        "--genuine", type=Path, nargs="+", required=True, help="genuine videos (one face each)"
    )
    parser.add_argument("--fake", type=Path, nargs="*", default=[], help="manipulated videos")
    parser.add_argument(
        "--target-false-alerts-per-hour",
        type=float,
        default=1.0,
        metavar="RATE",
        help="false alerts allowed per face-hour of genuine video (default 1)",
    )
    parser.add_argument(
        "--stride", type=int, default=5, help="frames between windows, as live (default 5)"
    )
    parser.add_argument(
        "--landmarks",
        choices=("full", "lite"),
        default="full",
        help="landmark network of the crops, as live (default full; lite for streams run "
        "with --landmarks lite: its crops sit 1-2 pixels elsewhere, docs/crops.md)",
    )
    parser.add_argument(
        "--reliability",
        type=Path,
        help="reliability diagram PNG (with --fake; default <weights>.reliability.png)",
    )


def run(args: argparse.Namespace) -> int:
    """Score the videos, choose the thresholds, save and print them."""
    from calibration.metrics import plot_reliability
    from calibration.thresholds import calibrate, save_thresholds
    from commands.writable import check_writable
    from engines.digest import file_sha256
    from engines.weights import thresholds_path_for
    from errors import LipForensicsError
    from stream.detector import Detector
    from training.evaluate import log_video, score_videos

    rate = args.target_false_alerts_per_hour
    if not 0 < rate < math.inf:  # NaN fails too
        raise LipForensicsError(
            f"--target-false-alerts-per-hour must be a positive finite number, got {rate:g}"
        )
    if not 1 <= args.stride <= 25:
        raise LipForensicsError(f"--stride must be 1..25, got {args.stride}")
    figure = args.reliability or args.weights.with_name(args.weights.stem + ".reliability.png")
    check_writable(thresholds_path_for(args.weights), "the thresholds file")  # before scoring
    if args.fake:
        check_writable(figure, "the reliability diagram")
    detector = Detector.load(args.weights, backend="torch", calibrated=False)
    for note in detector.checkpoint.notes:
        print(f"warning: {note}", file=sys.stderr)
    backend = detector.backend

    genuine = score_videos(args.genuine, backend, args.stride, log_video("genuine"), args.landmarks)
    fake = score_videos(args.fake, backend, args.stride, log_video("fake"), args.landmarks)
    genuine_runs = [run for video in genuine for run in video.runs]
    fake_runs = [run for video in fake for run in video.runs]
    if not genuine_runs:
        raise LipForensicsError("no genuine video had 25 consecutive frames with a face")

    thresholds, fit = calibrate(
        genuine_runs,
        fake_runs,
        stride=args.stride,
        weights_sha256=file_sha256(args.weights),
        target_per_hour=args.target_false_alerts_per_hour,
        landmarks=args.landmarks,
    )
    if fit is not None and fit.scale <= 0:
        print(
            "warning: the fakes score lower than the genuine videos (probability map scale "
            f"{fit.scale:.3g} <= 0): these weights do not detect this kind of fake",
            file=sys.stderr,
        )
    if fit is not None:
        plot_reliability(
            {"sigmoid(logit)": fit.before, "calibrated": fit.after},
            figure,
            f"window reliability: {len(genuine_runs)} genuine, {len(fake_runs)} fake runs",
        )
        print(f"reliability diagram: {figure}")
    path = save_thresholds(thresholds, args.weights)
    print(format_evidence(thresholds))
    print(f"saved {path}")
    return 0


def format_evidence(t: Thresholds) -> str:
    """A few lines: the chosen policy and what it rests on."""
    from calibration.metrics import poisson_upper

    e, p = t.evidence, t.policy
    lines = [
        f"rule: {e.rule} ({e.genuine_faces} genuine face runs, {e.genuine_windows} windows, "
        f"{e.face_hours * 60:.1f} face-minutes)",
        f"alert: window logit >= {p.alert_logit:.3f} for {p.escalate_windows} windows; "
        f"suspicious >= {p.suspicious_logit:.3f}; clear after {p.clear_windows} windows "
        f"(stride {t.stride})",
        f"genuine replay: {e.false_alerts} false alerts; 95% upper bound "
        f"{e.false_alerts_per_hour_upper95:.2f} per face-hour (target "
        f"{e.target_false_alerts_per_hour:g}); {100 * e.suspicious_share:.2f}% of windows "
        "suspicious or worse",
    ]
    if e.false_alerts_per_hour_upper95 > e.target_false_alerts_per_hour:
        needed = poisson_upper(0) / e.target_false_alerts_per_hour
        lines.append(
            f"note: {e.face_hours:.3f} face-hours cannot show {e.target_false_alerts_per_hour:g} "
            f"false alert per hour (about {needed:.1f} face-hours of genuine video are needed); "
            f"the alert threshold is the largest genuine logit ({e.max_genuine_logit:.3f}) "
            f"+ {e.margin:.3f}"
        )
    if e.fake_faces:
        lines.append(
            f"fakes: {e.fake_faces_alerted} of {e.fake_faces} fake face runs alerted; "
            f"probability map p = sigmoid({t.scale:.4f} * logit + {t.bias:.4f}); ECE "
            f"{e.ece_sigmoid:.3f} (sigmoid) -> {e.ece_calibrated:.3f} (calibrated, in-sample)"
        )
    return "\n".join(lines)
