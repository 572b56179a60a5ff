"""Strangers through a first user's paths: does any fold's network alert on its held-out
person's genuine footage when it comes as a file, a webcam, a 15 fps shared tab or a
gallery tile?

For every fold of a recipe saved by ``people-cv`` (its network, and its held-out person's
genuine recordings), with the thresholds of the cross-fold rule fitted on the *other* six
folds, at the hold chosen on all seven (the leave-one-out check of docs/demo_detector.md),
each recording is played through
``run`` four ways:

* ``file``: the 25 fps recording itself, as fast as possible;
* ``webcam``: letterboxed into 640x480 at 30 fps, paced live (``--realtime``);
* ``tab 15 fps``: letterboxed into a 1280x720 window at 15 fps, paced live;
* ``gallery``: the top-left tile of a 1280x720 2x2 call gallery at 30 fps, the other tiles
  other people, paced live.

Per fold and path: the held-out face's verdicts, its largest window logit, its alerts.

Run: ``python -m bench.demo_paths [--recipe augmented] [--encoder-steps 2000]
[--work-dir build/demo] [--people P1,...]`` (after ``run_stream.py people-cv``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import av

from bench.calls import gallery, run
from calibration.thresholds import save_thresholds
from engines.digest import file_sha256
from engines.method import FPS
from training.cv_recipes import RECIPES
from training.cv_thresholds import choose_hold, cross_fold_rule, thresholds_for
from training.demo_detector import STRIDE
from training.demo_people import PEOPLE
from training.people_cv import RESULTS, saved_folds, weights_path

#: (name, gallery side, frame size, fps, paced live)
PATHS = (
    ("file", 0, None, 25, False),
    ("webcam", 1, (640, 480), 30, True),
    ("tab 15 fps", 1, (1280, 720), 15, True),
    ("gallery", 2, (1280, 720), 30, True),
)


def seconds_of(video: Path) -> float:
    """How long ``video`` plays (its decoded frames at 25 fps)."""
    with av.open(str(video)) as clip:
        return sum(1 for _ in clip.decode(video=0)) / FPS


def played(
    recording: Path, path: tuple, weights: Path, others: list[Path], tmp: Path
) -> list[dict]:
    """The held-out face's verdicts and alerts from ``run`` on ``recording`` played ``path``'s
    way (the top-left tile's face in a gallery)."""
    name, side, size, fps, live = path
    if side == 0:
        video = recording
    else:
        seconds = seconds_of(recording)
        tiles = [recording, *others][: side * side]
        video = gallery(tmp / f"{name}.mp4", side, len(tiles), fps, seconds, tiles, size)
    events, _wall = run(video, live, STRIDE, weights)
    kept = []
    for event in events:
        if event["type"] in ("verdict", "alert"):
            x0, y0, x1, y1 = event.get("box") or (0, 0, 0, 0)
            if side < 2 or ((x0 + x1) / 2 < 0.5 and (y0 + y1) / 2 < 0.5):
                kept.append(event)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="augmented")
    parser.add_argument("--encoder-steps", type=int, default=2000)
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people", default=",".join(p.key for p in PEOPLE))
    args = parser.parse_args()
    folder = args.work_dir / f"seed{args.seed}"
    recipe = RECIPES[args.recipe].with_steps(args.encoder_steps)
    results = list(saved_folds(folder, recipe, args.seed).values())
    if len(results) < 3:
        raise SystemExit(f"no cross-validation of {args.recipe} under {folder / RESULTS}")
    hold = choose_hold(results)
    print(
        f"recipe {args.recipe}, {args.encoder_steps} encoder steps; thresholds: the rule of the "
        f"other folds (hold {hold} windows)"
    )
    print("| held out | path | verdicts | largest window logit | alert at | alerts |")
    print("|---|---|---|---|---|---|")
    for result in (r for r in results if r.held_out in args.people.split(",")):
        others = [r for r in results if r is not result]
        rule = cross_fold_rule(others, args.encoder_steps, hold)
        person = next(p for p in PEOPLE if p.key == result.held_out)
        tiles = [
            folder / f"{p.key}_{p.recordings[0].key}_genuine.mp4"
            for p in PEOPLE
            if p.key != person.key
        ][:3]
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "fold.pth"
            shutil.copyfile(weights_path(folder, recipe, person.key), weights)
            thresholds = thresholds_for(
                result.calibration_windows,
                rule,
                stride=STRIDE,
                weights_sha256=file_sha256(weights),
            )
            save_thresholds(thresholds, weights)
            for path in PATHS:
                verdicts, alerts, top = 0, 0, float("-inf")
                for recording in person.recordings:
                    video = folder / f"{person.key}_{recording.key}_genuine.mp4"
                    events = played(video, path, weights, tiles, Path(tmp))
                    logits = [e["logit"] for e in events if e["type"] == "verdict"]
                    verdicts += len(logits)
                    alerts += sum(e["type"] == "alert" for e in events)
                    top = max([top, *logits])
                print(
                    f"| {person.key} | {path[0]} | {verdicts} | {top:+.2f} "
                    f"| {thresholds.policy.alert_logit:+.2f} | {alerts} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
