"""Two or more people-cv recipes averaged: what their mean logit would do on strangers.

Usage: ``python -m bench.cv_ensemble augmented wide [--encoder-steps 4000] [--seed 0]
[--work-dir build/demo]`` (after ``run_stream.py people-cv`` has saved every fold of each
recipe); a member may name its own seed, ``augmented@1`` (``people-cv --seed 1``), so that
one recipe trained twice can be averaged. Nothing is trained: per held-out recording, the
recipes' window logits (stride 5) are averaged, as an ensemble of their networks would score
it. Every member scores the same videos, those of ``--seed``: the saved networks of a member
of another seed score them afresh (its own held-out fakes are other videos).

Printed: the mean clip AUC per manipulation type over the seven folds (clips: every fifth
window, the non-overlapping 25-frame clips; this reproduces each recipe's own AUCs), then
the cross-fold rule's leave-one-out table at the hold it chooses and the rule over all folds
(:mod:`training.cv_thresholds`, as ``people-cv`` prints it for one recipe); with
``--demo-clips``, the demo clip's source in every manipulation against that rule. With
``--subsets K`` instead, one row for every K of the members averaged: whether an average
holds up does not then rest on one hand-picked set.

A demo's figures on synthetic manipulations, not deepfake detection.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

from calibration.metrics import auc
from engines.model import ModelConfig
from training.cv_recipes import RECIPES, Recipe
from training.cv_results import KINDS, FoldResult, windows_by_kind
from training.cv_thresholds import choose_hold, cross_fold_rule, leave_one_out, markdown_checks
from training.demo_detector import STRIDE
from training.demo_people import PEOPLE
from training.demo_results import GENUINE
from training.fold_training import held_out_versions
from training.people_cv import saved_folds, weights_path

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


def rescored(result: FoldResult, recipe: Recipe, seed: int, folder: Path) -> FoldResult:
    """``result`` with its held-out windows scored afresh by its saved network (trained at
    ``seed``) on the held-out person's versions cached in ``folder`` (another seed's)."""
    from engines.checkpoint import load_checkpoint
    from training.demo_detector import labelled_features, scored, video_crops

    own = folder.with_name(f"seed{seed}")
    model = load_checkpoint(weights_path(own, recipe, result.held_out)).model
    person = next(p for p in PEOPLE if p.key == result.held_out)
    videos = []
    for version in held_out_versions(person):
        crops = video_crops(folder / f"{version.name}.mp4", version.label)[0]
        videos.append(scored(model, version, labelled_features(model.encoder, crops)))
    return replace(result, held_out_windows=windows_by_kind(videos))


def member(text: str) -> tuple[str, int | None]:
    """An argparse type: ``RECIPE`` or ``RECIPE@SEED``."""
    name, _, seed = text.partition("@")
    if name not in RECIPES or (seed and not seed.isdigit()):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected RECIPE or RECIPE@SEED, RECIPE one of {', '.join(RECIPES)}"
        )
    return name, int(seed) if seed else None


def member_folds(
    members: list[tuple[Recipe, int]], seed: int, work_dir: Path
) -> list[list[FoldResult]]:
    """Per member (recipe, the seed it was trained at), its folds in :data:`PEOPLE`'s order,
    scored on the held-out videos of ``seed``; raises ``LookupError`` naming a missing fold."""
    saved = [saved_folds(work_dir / f"seed{own}", r, own) for r, own in members]
    for person in (p.key for p in PEOPLE):
        missing = [f"{r.name}@{own}" for (r, own), s in zip(members, saved, strict=True)
                   if person not in s]  # fmt: skip
        if missing:
            raise LookupError(f"no saved fold of {', '.join(missing)} holding out {person} in "
                              f"{work_dir} (run people-cv first)")  # fmt: skip
    base = work_dir / f"seed{seed}"
    return [
        [s[p.key] if own == seed else rescored(s[p.key], r, own, base) for p in PEOPLE]
        for (r, own), s in zip(members, saved, strict=True)
    ]


def ensemble_folds(folds: list[list[FoldResult]], name: str) -> list[FoldResult]:
    """The folds of the ensemble of the members whose :func:`member_folds` are ``folds``."""
    return [averaged(list(fold), name) for fold in zip(*folds, strict=True)]


def merged_size(configs: list[ModelConfig]) -> str:
    """What the members weigh in one ensemble file (side by side, float32) and as the one
    network it loads as (:mod:`engines.ensemble`)."""
    from engines.ensemble import merged_config
    from engines.model import value_count

    if len(configs) < 2:
        return "\none network"
    config = merged_config(configs)
    stored, values = sum(map(value_count, configs)), value_count(config)
    widths = "/".join(map(str, (config.frontend_channels, *config.trunk_widths)))
    return (
        f"\nan ensemble file of {stored:,} values ({stored * 4 / 1e6:.1f} MB as float32), "
        f"loaded as one network (engines.ensemble): widths {widths}, TCN {config.tcn_hidden} "
        f"per branch, {values:,} values ({values * 4 / 1e6:.1f} MB)"
    )


def demo_clip_logits(
    members: list[tuple[Recipe, int]], seed: int, work_dir: Path
) -> dict[str, list[np.ndarray]]:
    """The demo clips' source (``build-demo``'s) as genuine and with every manipulation (the
    demo's seed ``seed``, written under the seed's folder): per version, each member's window
    logits from its network of the fold that holds the demo person out."""
    from engines.checkpoint import load_checkpoint
    from training.demo_build import DEMO_PERSON, demo_footage
    from training.demo_detector import labelled_features, video_crops, window_logits
    from training.manipulations import manipulate, write_video

    folder = work_dir / f"seed{seed}"
    person = next(p for p in PEOPLE if p.key == DEMO_PERSON)
    span, donor = demo_footage(folder, person.recordings[0].key)
    paths = {GENUINE: folder / "demo_source.mp4"}
    for kind in KINDS:
        paths[kind] = folder / f"demo_source_{kind}.mp4"
        if not paths[kind].exists():
            write_video(paths[kind], manipulate(span, kind, seed=seed, donor=donor))
    networks = [
        load_checkpoint(weights_path(work_dir / f"seed{own}", r, DEMO_PERSON)).model
        for r, own in members
    ]
    logits = {}
    for kind, path in paths.items():
        crops = video_crops(path, int(kind != GENUINE))[0]
        logits[kind] = [
            window_logits(n, labelled_features(n.encoder, crops), STRIDE) for n in networks
        ]
    return logits


def demo_clip_held(logits: dict[str, list[np.ndarray]], hold: int) -> dict[str, float]:
    """Per demo version, the members' averaged window logits' highest value held over
    ``hold`` windows."""
    from training.cv_thresholds import sustained_maximum

    return {kind: sustained_maximum([np.mean(v, axis=0)], hold) for kind, v in logits.items()}


def subsets_table(
    names: list[str],
    folds: list[list[FoldResult]],
    demo: dict[str, list[np.ndarray]],
    size: int,
) -> str:
    """One row per ``size`` of the members (``names``, their :func:`member_folds` and
    :func:`demo_clip_logits`): mean clip AUC, the hold and rule it chooses, folds whose
    genuine footage or manipulations alert under the other six folds' rule, and the demo
    clips' held logits against the rule."""
    rows = [
        "| members | mean AUC | hold | rule | genuine alerts | caught | demo: genuine | "
        + " | ".join(f"`{k}`" for k in KINDS)
        + " |",
        "|---" * (7 + len(KINDS)) + "|",
    ]
    for chosen in combinations(range(len(names)), size):
        name = " + ".join(names[i] for i in chosen)
        averaged_folds = ensemble_folds([folds[i] for i in chosen], name)
        hold = choose_hold(averaged_folds)
        rule = cross_fold_rule(averaged_folds, 0, hold).alert_logit
        checks = leave_one_out(averaged_folds, hold)
        held = demo_clip_held({k: [v[i] for i in chosen] for k, v in demo.items()}, hold)
        mean_auc = np.mean([np.mean(list(f.auc.values())) for f in averaged_folds])
        cells = [
            name,
            f"{mean_auc:.3f}",
            str(hold),
            f"{rule:+.2f}",
            str(sum(c.genuine_alerts > 0 for c in checks)),
            str(sum(any(c.alerted.values()) for c in checks)),
            *(f"{held[k]:+.2f}" + (" **alert**" if held[k] >= rule else "") for k in held),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", type=member, metavar="RECIPE[@SEED]")
    parser.add_argument("--encoder-steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0, help="the members' seed unless named")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument(
        "--demo-clips",
        action="store_true",
        help="also score the demo clip's source, genuine and manipulated",
    )
    parser.add_argument(
        "--subsets",
        type=int,
        metavar="K",
        help="instead: one row for every K of the members averaged (demo clips included)",
    )
    args = parser.parse_args()
    members = [
        (RECIPES[name].with_steps(args.encoder_steps), args.seed if seed is None else seed)
        for name, seed in args.members
    ]
    names = [f"{recipe.name}@{own}" for recipe, own in members]
    try:
        per_member = member_folds(members, args.seed, args.work_dir)
    except LookupError as error:
        parser.exit(2, f"error: {error}\n")
    if args.subsets:
        print(f"# every {args.subsets} of {', '.join(names)} averaged, on the videos of seed "
              f"{args.seed}; caught: folds with a manipulation alerted")  # fmt: skip
        demo = demo_clip_logits(members, args.seed, args.work_dir)
        print(subsets_table(names, per_member, demo, args.subsets))
        return
    folds = ensemble_folds(per_member, "+".join(names))
    name = folds[0].recipe
    print(f"# {name} (recipe@seed), {args.encoder_steps} encoder steps, on the videos of seed "
          f"{args.seed}: mean clip AUC over the folds' held-out people")  # fmt: skip
    print("| " + " | ".join(f"`{k}`" for k in KINDS) + " | mean |")
    print("|---" * (len(KINDS) + 1) + "|")
    means = [float(np.mean([f.auc[k] for f in folds])) for k in KINDS]
    print("| " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")
    print(merged_size([recipe.model for recipe, _seed in members]))
    hold = choose_hold(folds)
    print(f"\n{name}: each fold under the rule of the other six (hold {hold} windows)")
    rule = cross_fold_rule(folds, 0, hold)
    print(markdown_checks(leave_one_out(folds, hold), rule))
    if args.demo_clips:
        from training.demo_build import DEMO_KIND, DEMO_PERSON

        held = demo_clip_held(demo_clip_logits(members, args.seed, args.work_dir), hold)
        print(
            f"\nthe demo clip's source ({DEMO_KIND} is the demo's manipulation), the "
            f"{DEMO_PERSON}-fold networks averaged, highest logit held {hold} windows (the rule "
            f"alerts at {rule.alert_logit:+.2f}): "
            + ", ".join(f"{kind} {value:+.2f}" for kind, value in held.items())
        )


if __name__ == "__main__":
    main()
