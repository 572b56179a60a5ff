"""`evaluate`: video-level AUC on real and fake videos, and the paper's robustness study."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from commands.progress import ProgressBar
    from engines.backends import Backend
    from training.evaluate import Evaluation, FaceLogits

HELP = "video-level AUC on real/fake folders (bootstrap CI, ROC), optional robustness study"
DESCRIPTION = """\
Score every video in --real and --fake the way the paper does (consecutive non-overlapping
25-frame clips, video logit = mean clip logit) and report the video-level AUC with a 95%
bootstrap interval, the accuracy at the calibrated threshold (the alert threshold of
<weights>.thresholds.json, else logit 0) and optionally a ROC curve PNG.

--perturb repeats the evaluation after perturbing the full video frames (before landmarks),
as in the paper: saturation, contrast, block, noise, blur, pixelation, compression, each at
severity 1..5 (docs/calibration.md defines them), and prints the AUCs as one table."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``evaluate`` command."""
    from training.perturbations import LEVELS, PERTURBATIONS

    parser.add_argument("--weights", type=Path, required=True, help="LipForensics checkpoint")
    parser.add_argument("--real", type=Path, required=True, help="folder of genuine videos")
    parser.add_argument("--fake", type=Path, required=True, help="folder of manipulated videos")
    parser.add_argument("--roc", type=Path, help="write the ROC curve to this PNG")
    parser.add_argument(
        "--perturb",
        nargs="*",
        choices=list(PERTURBATIONS),
        metavar="TYPE",
        help=f"robustness study; all types when none are named ({', '.join(PERTURBATIONS)})",
    )
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=list(range(1, LEVELS + 1)),
        choices=range(1, LEVELS + 1),
        metavar="N",
        help="severity levels for --perturb (default: 1 2 3 4 5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of perturbations, bootstrap")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(args: argparse.Namespace) -> int:
    """Score the folders, print the AUC (and the robustness table)."""
    from calibration.metrics import plot_roc, roc_curve
    from commands.progress import ProgressBar
    from engines.method import CLIP_FRAMES
    from errors import MediaError
    from stream.detector import Detector
    from training.evaluate import evaluate_logits, list_videos, log_video, score_videos

    real, fake = list_videos(args.real), list_videos(args.fake)
    if args.perturb is not None and any(p.suffix.lower() == ".npy" for p in real + fake):
        raise MediaError("--perturb needs videos: it perturbs full frames, not mouth crops")
    detector = Detector.load(args.weights, backend="torch")
    for note in detector.checkpoint.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(detector.thresholds_note, file=sys.stderr)
    thresholds = detector.thresholds
    threshold = thresholds.policy.alert_logit if thresholds else 0.0
    backend = detector.backend

    with ProgressBar("evaluate", enabled=not args.json, unit="video") as bar:
        clean = evaluate_logits(
            score_videos(real, backend, CLIP_FRAMES, counted(log_video("real"), bar, real + fake)),
            score_videos(fake, backend, CLIP_FRAMES, counted(log_video("fake"), bar, real + fake)),
            threshold,
            args.seed,
        )
    report: dict[str, object] = {
        "weights": str(args.weights),
        "clean": summarise(clean),
        "threshold_source": "thresholds file" if thresholds else "logit 0 (uncalibrated)",
    }
    for skipped in clean.skipped:
        print(f"warning: skipped {skipped}", file=sys.stderr)
    if args.roc:
        plot_roc(
            {f"AUC {clean.auc.estimate:.3f}": roc_curve(clean.video_logits, clean.labels)},
            args.roc,
            f"video-level ROC: {len(real)} real, {len(fake)} fake ({args.weights.name})",
        )
        report["roc"] = str(args.roc)
    if args.perturb is not None:
        report["robustness"] = robustness(args, real, fake, backend, threshold)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report, args.levels))
    return 0


def robustness(
    args: argparse.Namespace, real: list[Path], fake: list[Path], backend: Backend, threshold: float
) -> dict[str, dict[str, dict[str, object]]]:
    """AUC per perturbation type and level: {type: {level: summary}}."""
    from errors import MediaError
    from training.evaluate import evaluate_logits, score_perturbed
    from training.perturbations import PERTURBATIONS

    table: dict[str, dict[str, dict[str, object]]] = {}
    for name in args.perturb or list(PERTURBATIONS):
        table[name] = {}
        for level in args.levels:
            print(f"  perturbation {name} level {level}", file=sys.stderr)
            try:
                cell = summarise(
                    evaluate_logits(
                        score_perturbed(real, backend, name, level, args.seed),
                        score_perturbed(fake, backend, name, level, args.seed),
                        threshold,
                        args.seed,
                    )
                )
            except MediaError as error:  # e.g. no face found in any perturbed fake
                cell = {"auc": None, "error": str(error)}
            cell["parameter"] = PERTURBATIONS[name].levels[level - 1]
            table[name][str(level)] = cell
    return table


def counted(
    log: Callable[[FaceLogits], None], bar: ProgressBar, videos: list[Path]
) -> Callable[[FaceLogits], None]:
    """``log``, then ``bar`` advanced by one of ``videos`` (the bar counts every call)."""

    def on_video(video: FaceLogits) -> None:
        log(video)
        bar(bar.done + 1, len(videos))

    return on_video


def summarise(result: Evaluation) -> dict[str, object]:
    """The JSON-ready numbers of one evaluation."""
    return {
        "auc": result.auc.estimate,
        "auc_ci95": [result.auc.low, result.auc.high],
        "accuracy": result.accuracy,
        "threshold": result.threshold,
        "real": int((result.labels == 0).sum()),
        "fake": int(result.labels.sum()),
        "skipped": list(result.skipped),
    }


def format_report(report: dict, levels: list[int]) -> str:
    """The clean result, then one robustness table (rows: types, columns: levels, mean)."""
    clean = report["clean"]
    low, high = clean["auc_ci95"]
    lines = [
        f"videos: {clean['real']} real, {clean['fake']} fake"
        + (f" ({len(clean['skipped'])} skipped: no face)" if clean["skipped"] else ""),
        f"video-level AUC {clean['auc']:.4f} (95% bootstrap CI {low:.4f} - {high:.4f})",
        f"accuracy {clean['accuracy']:.4f} at video logit >= {clean['threshold']:.3f} "
        f"({report['threshold_source']})",
    ]
    if "roc" in report:
        lines.append(f"ROC curve: {report['roc']}")
    table = report.get("robustness")
    if table:
        lines += ["", f"video-level AUC under perturbation (clean {clean['auc']:.3f})"]
        header = f"{'perturbation':<14}" + "".join(f"{level:>8}" for level in levels)
        lines += [header + f"{'mean':>8}", "-" * (len(header) + 8)]
        for name, by_level in table.items():
            aucs = [by_level[str(level)]["auc"] for level in levels]
            cells = "".join("     n/a" if auc is None else f"{auc:>8.3f}" for auc in aucs)
            known = [auc for auc in aucs if auc is not None]
            mean = f"{sum(known) / len(known):>8.3f}" if known else "     n/a"
            lines.append(f"{name:<14}{cells}{mean}")
    return "\n".join(lines)
