"""Build the shipped demo detector (``run_stream.py build-demo``) in one call.

**A demo, not a deepfake detector.** It is trained on synthetic mouth manipulations of a
few people's genuine footage and knows nothing about real deepfakes; real use takes the
authors' ``lipforensics_ff.pth``.

The shipped detector is one fold of the people cross-validation (``people-cv``): the fold
that holds out :data:`DEMO_PERSON`, the person the demo clips show, trained with the
recipe the cross-validation chose (:data:`~training.cv_recipes.SHIPPED`). So the demo's
manipulated clip is of someone the detector never trained or calibrated on. The steps:

1. Every person's versions and their crops (:func:`~training.fold_training.cache_crops`,
   shared with ``people-cv``).
2. The fold's network (:func:`~training.fold_training.train_fold`): encoder from scratch
   and MS-TCN head on the training people, the head's epoch chosen on the calibration
   person.
3. Thresholds and probability map: the cross-fold rule (:mod:`training.cv_thresholds`,
   fitted by ``people-cv`` on every fold's held-out person and kept in :data:`RULE_FILE`)
   placed at this network's calibration footage.
4. Results per person and, on the held-out person, per manipulation.
5. The two demo clips the ``demo`` command plays (:data:`~training.demo_detector.DEMO_SOURCE`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from calibration.thresholds import save_thresholds
from engines.weights import DEMO
from errors import LipForensicsError
from training.cv_recipes import SHIPPED
from training.cv_results import KINDS
from training.cv_thresholds import CrossFoldRule, thresholds_for
from training.demo_detector import (
    DEMO_DIR,
    DEMO_GENUINE,
    DEMO_MANIPULATED,
    DEMO_SOURCE,
    DISCLAIMER,
    REPORT,
    STRIDE,
    WEIGHTS,
    read_footage,
    recording_video,
    video_crops,
    video_window_logits,
)
from training.demo_people import PEOPLE
from training.demo_results import manipulation_result, markdown_tables, person_result
from training.fold_training import Log, cache_crops, train_fold
from training.manipulations import Footage, manipulate, write_video

if TYPE_CHECKING:
    from engines.model import LipForensics
    from stream.alerts.policy import PolicyConfig

#: the person the demo clips show, held out of the shipped detector entirely
DEMO_PERSON = "P1"
#: the manipulation of the manipulated demo clip: P1's lips from their other recording
#: pasted in (never trained on: ``swap`` is in no recipe's training kinds)
DEMO_KIND = "swap"
#: the cross-fold rule ``people-cv --ship-rule`` writes (:mod:`training.cv_thresholds`)
RULE_FILE = DEMO_DIR / "cross_fold_rule.json"
#: the bar on the held-out person: mean clip AUC over the manipulation types
MIN_AUC = 0.8


@dataclass(frozen=True)
class DemoReport:
    """The measured figures of a build (also written to :data:`REPORT`)."""

    seconds: float
    recipe: str
    weights_bytes: int
    parameters: int
    early_stopping_auc: float
    alert_logit: float
    alert_probability: float
    suspicious_logit: float
    held_out: str
    held_out_genuine_alerts: int
    held_out_max_genuine_logit: float
    held_out_mean_auc: float
    demo_kind: str
    demo_genuine_alerts: int
    demo_manipulated_alerts: int
    cross_fold: dict = field(default_factory=dict)
    people: list[dict] = field(default_factory=list)
    manipulations: list[dict] = field(default_factory=list)


def load_rule(path: Path = RULE_FILE) -> CrossFoldRule:
    """The cross-fold rule for :data:`~training.cv_recipes.SHIPPED`, or a clear error."""
    try:
        rule = CrossFoldRule.load(path)
    except (OSError, ValueError, TypeError) as error:
        raise LipForensicsError(
            f"cannot read the cross-fold rule {path} ({error}); make it with "
            f"'run_stream.py people-cv --recipes {SHIPPED.name} --encoder-steps "
            f"{SHIPPED.encoder.steps} --ship-rule'"
        ) from None
    if (rule.recipe, rule.encoder_steps) != (SHIPPED.name, SHIPPED.encoder.steps):
        raise LipForensicsError(
            f"{path} was fitted for recipe {rule.recipe} at {rule.encoder_steps} steps, the build "
            f"uses {SHIPPED.name} at {SHIPPED.encoder.steps}: run people-cv with --ship-rule"
        )
    return rule


def build_demo(
    work_dir: Path, out_dir: Path = DEMO_DIR, seed: int = 0, log: Log = print
) -> DemoReport:
    """Rebuild the demo detector, its thresholds, report and demo clips, into ``out_dir``
    (by default :data:`~training.demo_detector.DEMO_DIR`, the shipped files).

    ``work_dir`` keeps the synthetic videos and crops between runs, one folder per seed
    (shared with ``people-cv``; delete it to redo them). Torch runs on one thread meanwhile:
    its results depend on the thread count, and the same seed must give the same detector on
    any machine (the same network as ``people-cv``'s fold that holds out the demo person).
    """
    threads = torch.get_num_threads()
    try:
        return _build(work_dir, out_dir, seed, log)
    finally:
        torch.set_num_threads(threads)


def _build(work_dir: Path, out_dir: Path, seed: int, log: Log) -> DemoReport:
    """:func:`build_demo`'s steps."""
    from engines.checkpoint import save_checkpoint
    from engines.digest import file_sha256

    started = time.perf_counter()
    rule = load_rule()
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS.name
    log(DISCLAIMER)

    log("1/5 every person's genuine, manipulated and perturbed versions -> mouth crops")
    folder = cache_crops(work_dir, seed, log)

    fold = SHIPPED.fold(DEMO_PERSON, [p.key for p in PEOPLE])
    log(
        f"2/5 recipe {SHIPPED.name}: encoder and head on {', '.join(fold.train)}; "
        f"{', '.join(fold.calibrate)} calibrates; {fold.held_out} held out"
    )
    trained = train_fold(folder, SHIPPED, fold, seed, log)
    save_checkpoint(weights, trained.model)

    log("3/5 thresholds and probability map: the cross-fold rule at the calibration footage")
    thresholds = thresholds_for(
        trained.calibration_genuine(), rule, stride=STRIDE, weights_sha256=file_sha256(weights)
    )
    thresholds = replace(thresholds, path=save_thresholds(thresholds, weights))
    policy = thresholds.policy
    log(f"    {thresholds.describe()}")

    log("4/5 results per person and, on the held-out person, per manipulation")
    roles = {fold.held_out: "held-out", **{k: "calibrate" for k in fold.calibrate}}
    everyone = trained.training_genuine + trained.calibration + trained.held_out
    per_person = [
        person_result(p.key, p.description, roles.get(p.key, "train"), everyone, policy)
        for p in PEOPLE
    ]
    per_kind = [
        manipulation_result(k, k in SHIPPED.train_kinds, trained.held_out, policy) for k in KINDS
    ]
    held = next(r for r in per_person if r.person == fold.held_out)

    log(f"5/5 demo clips: {DEMO_PERSON}'s other recording, genuine and {DEMO_KIND}")
    donor = next(v for v in trained.held_out if v.kind == "genuine").recording
    demo_alerts = _write_demo_clips(trained.model, folder, out_dir, donor, seed, policy)

    report = DemoReport(
        seconds=round(time.perf_counter() - started, 1),
        recipe=f"{SHIPPED.name}, {SHIPPED.encoder.steps} encoder steps",
        weights_bytes=weights.stat().st_size,
        parameters=sum(p.numel() for p in trained.model.parameters()),
        early_stopping_auc=round(trained.early_stopping_auc, 4),
        alert_logit=round(policy.alert_logit, 3),
        alert_probability=round(thresholds.probability(policy.alert_logit), 4),
        suspicious_logit=round(policy.suspicious_logit, 3),
        held_out=fold.held_out,
        held_out_genuine_alerts=held.genuine_alerts,
        held_out_max_genuine_logit=held.max_genuine_logit,
        held_out_mean_auc=round(float(np.mean([m.auc for m in per_kind])), 4),
        demo_kind=DEMO_KIND,
        demo_genuine_alerts=demo_alerts[0],
        demo_manipulated_alerts=demo_alerts[1],
        cross_fold=asdict(rule),
        people=[asdict(r) for r in per_person],
        manipulations=[asdict(m) for m in per_kind],
    )
    (out_dir / REPORT.name).write_text(
        json.dumps({"disclaimer": DISCLAIMER, **asdict(report)}, indent=2) + "\n"
    )
    log(markdown_tables(report.people, report.manipulations))
    return report


def demo_footage(folder: Path, donor_recording: str) -> tuple[Footage, Footage]:
    """The demo clips' genuine stretch (:data:`~training.demo_detector.DEMO_SOURCE`, cut
    into ``folder`` if missing) and the footage of :data:`DEMO_PERSON`'s recording
    ``donor_recording`` whose lips the manipulated clip takes (cached there by
    :func:`~training.fold_training.cache_crops`)."""
    source = recording_video(DEMO_SOURCE, folder / "demo_source.mp4")
    donor_video = folder / f"{DEMO_PERSON}_{donor_recording}_genuine.mp4"
    return (
        read_footage(source, video_crops(source, 0)[1]),
        read_footage(donor_video, video_crops(donor_video, 0)[1]),
    )


def _write_demo_clips(
    model: LipForensics,
    folder: Path,
    out_dir: Path,
    donor_recording: str,
    seed: int,
    policy: PolicyConfig,
) -> tuple[int, int]:
    """Write the two demo clips into ``out_dir`` (the manipulated one with the lips of
    :data:`DEMO_PERSON`'s recording ``donor_recording``) and return the alerts each raises
    through the real crops."""
    from stream.alerts.policy import count_alerts

    span, donor = demo_footage(folder, donor_recording)
    genuine, manipulated = out_dir / DEMO_GENUINE.name, out_dir / DEMO_MANIPULATED.name
    write_video(genuine, span.frames)
    write_video(manipulated, manipulate(span, DEMO_KIND, seed=seed, donor=donor))
    counts = [count_alerts(video_window_logits(model, p), policy) for p in (genuine, manipulated)]
    return counts[0], counts[1]


def install_build(built: Path, shipped: Path = DEMO_DIR) -> None:
    """Copy a build's files from ``built`` into ``shipped``."""
    shipped.mkdir(parents=True, exist_ok=True)
    thresholds = DEMO.thresholds.name
    for name in (REPORT.name, DEMO_GENUINE.name, DEMO_MANIPULATED.name, WEIGHTS.name, thresholds):
        shutil.copyfile(built / name, shipped / name)


def report_passes(report: DemoReport) -> tuple[bool, str]:
    """Whether a build meets the bar on its held-out person, and a one-line account."""
    problems = []
    if not report.held_out_mean_auc >= MIN_AUC:
        problems.append(f"held-out mean clip AUC {report.held_out_mean_auc:.4f} < {MIN_AUC}")
    if report.held_out_genuine_alerts or report.demo_genuine_alerts:
        problems.append("alerts on held-out genuine video")
    if not report.demo_manipulated_alerts:
        problems.append("no alert on the manipulated demo clip")
    if problems:
        return False, "; ".join(problems)
    return True, (
        f"{report.held_out} (never trained or calibrated on): no alert on their genuine "
        f"footage, mean clip AUC {report.held_out_mean_auc:.4f}; demo clips as expected"
    )
