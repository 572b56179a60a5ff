"""Two or more people-cv recipes averaged: what their mean logit would do on strangers.

Usage: ``python -m bench.cv_ensemble augmented wide [--encoder-steps 4000] [--seed 0]
[--work-dir build/demo]`` (after ``run_stream.py people-cv`` has saved every fold of each
recipe); a member may name its own seed, ``augmented@1`` (``people-cv --seed 1``), so that
one recipe trained twice can be averaged. Nothing is trained: per held-out recording, the
recipes' window logits (stride 5) are averaged, as an ensemble of their networks would score
it. Printed: the mean clip AUC per manipulation type over the seven folds (clips: every
fifth window, the non-overlapping 25-frame clips; this reproduces each recipe's own AUCs),
then the cross-fold rule's leave-one-out table at the hold it chooses and the rule over all
folds (:mod:`training.cv_thresholds`, as ``people-cv`` prints it for one recipe).

A demo's figures on synthetic manipulations, not deepfake detection.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from calibration.metrics import auc
from training.cv_recipes import RECIPES
from training.cv_results import KINDS, FoldResult
from training.cv_thresholds import choose_hold, cross_fold_rule, leave_one_out, markdown_checks
from training.demo_people import PEOPLE
from training.demo_results import GENUINE
from training.people_cv import saved_folds

#: windows per non-overlapping 25-frame clip at the folds' stride of 5 frames
WINDOWS_PER_CLIP = 5


def averaged(members: list[FoldResult], name: str) -> FoldResult:
    """One fold's held-out windows averaged over the recipes' results ``members``."""
    windows = {
        kind: [
            np.mean([np.asarray(m.held_out_windows[kind][i]) for m in members], axis=0)
            for i in range(len(members[0].held_out_windows[kind]))
        ]
        for kind in (GENUINE, *KINDS)
    }
    genuine = np.concatenate([w[::WINDOWS_PER_CLIP] for w in windows[GENUINE]])
    aucs = {}
    for kind in KINDS:
        fakes = np.concatenate([w[::WINDOWS_PER_CLIP] for w in windows[kind]])
        labels = np.r_[np.zeros(genuine.size), np.ones(fakes.size)]
        aucs[kind] = auc(np.r_[genuine, fakes], labels)
    return replace(
        members[0],
        recipe=name,
        max_genuine_logit=round(float(max(w.max() for w in windows[GENUINE])), 3),
        auc=aucs,
        held_out_windows={k: [w.round(3).tolist() for w in v] for k, v in windows.items()},
    )


def member(text: str) -> tuple[str, int | None]:
    """An argparse type: ``RECIPE`` or ``RECIPE@SEED``."""
    name, _, seed = text.partition("@")
    if name not in RECIPES or (seed and not seed.isdigit()):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected RECIPE or RECIPE@SEED, RECIPE one of {', '.join(RECIPES)}"
        )
    return name, int(seed) if seed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", type=member, metavar="RECIPE[@SEED]")
    parser.add_argument("--encoder-steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0, help="the members' seed unless named")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    args = parser.parse_args()
    members = [
        (RECIPES[name].with_steps(args.encoder_steps), args.seed if seed is None else seed)
        for name, seed in args.members
    ]
    name = "+".join(f"{recipe.name}@{seed}" for recipe, seed in members)
    saved = [saved_folds(args.work_dir / f"seed{seed}", r, seed) for r, seed in members]
    folds = []
    for person in (p.key for p in PEOPLE):
        missing = [f"{r.name}@{seed}" for (r, seed), s in zip(members, saved, strict=True)
                   if person not in s]  # fmt: skip
        if missing:
            parser.exit(2, f"error: no saved fold of {', '.join(missing)} holding out {person} "
                        f"in {args.work_dir} (run people-cv first)\n")  # fmt: skip
        folds.append(averaged([s[person] for s in saved], name))
    print(f"# {name} (recipe@seed), {args.encoder_steps} encoder steps: mean clip AUC "
          "over the folds' held-out people")  # fmt: skip
    print("| " + " | ".join(f"`{k}`" for k in KINDS) + " | mean |")
    print("|---" * (len(KINDS) + 1) + "|")
    means = [float(np.mean([f.auc[k] for f in folds])) for k in KINDS]
    print("| " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")
    hold = choose_hold(folds)
    print(f"\n{name}: each fold under the rule of the other six (hold {hold} windows)")
    print(markdown_checks(leave_one_out(folds, hold), cross_fold_rule(folds, 0, hold)))


if __name__ == "__main__":
    main()
