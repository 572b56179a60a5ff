"""The shipped demo detector on the bundled people: how it treats people it never saw.

The shipped one-person build trained on P1 alone (docs/demo_detector.md), so P2-P7 are
strangers to it. For every person, from the crops ``people-cv`` cached (genuine footage and
its five synthetic manipulations): the largest window logit (stride 5) of their genuine
footage, the largest held for 3 windows in a row (what an alert needs), the alerts its
shipped thresholds raise on it, and how many of their manipulated recordings alert; then
the same for the two demo clips.

Run: ``python -m bench.demo_strangers [--work-dir build/demo]`` (after ``run_stream.py
people-cv``, which makes the crops).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from calibration.thresholds import load_thresholds_for
from engines.checkpoint import load_checkpoint
from stream.alerts.policy import count_alerts
from training.cv_results import KINDS
from training.cv_thresholds import sustained_maximum
from training.demo_detector import (
    DEMO_GENUINE,
    DEMO_MANIPULATED,
    STRIDE,
    WEIGHTS,
    labelled_features,
    video_crops,
    video_window_logits,
    window_logits,
)
from training.demo_encoder import Crops
from training.demo_people import PEOPLE
from training.demo_results import GENUINE


def logits_of(model, crops: Crops) -> np.ndarray:
    """Window logits every :data:`STRIDE` frames of one video's crops."""
    with torch.no_grad():
        return window_logits(model, labelled_features(model.encoder, crops), STRIDE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = args.work_dir / f"seed{args.seed}"
    torch.set_num_threads(1)
    model = load_checkpoint(WEIGHTS).model.eval()
    thresholds = load_thresholds_for(WEIGHTS)
    policy = thresholds.policy
    print(
        f"shipped demo detector; alert at window logit {policy.alert_logit:+.2f} held "
        f"{policy.escalate_windows} windows (stride {STRIDE})"
    )
    print(
        "| person | largest genuine window logit | held 3 windows | genuine alerts "
        "| manipulated recordings alerted |"
    )
    print("|---|---|---|---|---|")
    for person in PEOPLE:
        logits = {}
        for kind in (GENUINE, *KINDS):
            label = int(kind != GENUINE)
            logits[kind] = [
                logits_of(model, video_crops(folder / f"{person.key}_{r.key}_{kind}.mp4", label)[0])
                for r in person.recordings
            ]
        genuine = logits[GENUINE]
        alerted = sum(count_alerts(s, policy) > 0 for k in KINDS for s in logits[k])
        print(
            f"| {person.key} {person.description} | {sustained_maximum(genuine, 1):+.2f} "
            f"| {sustained_maximum(genuine, 3):+.2f} "
            f"| {sum(count_alerts(s, policy) for s in genuine)} "
            f"| {alerted} of {len(KINDS) * len(person.recordings)} |",
            flush=True,
        )
    for path in (DEMO_GENUINE, DEMO_MANIPULATED):
        logits = video_window_logits(model, path)
        print(
            f"| demo clip {path.name} | {sustained_maximum([logits], 1):+.2f} "
            f"| {sustained_maximum([logits], 3):+.2f} | {count_alerts(logits, policy)} | |"
        )


if __name__ == "__main__":
    main()
