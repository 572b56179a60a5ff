"""`people-cv`: choose the demo detector's recipe by people it never saw."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.cv_recipes import Recipe
    from training.cv_results import FoldResult
    from training.cv_thresholds import CrossFoldRule

HELP = "leave-one-person-out cross-validation of demo-detector recipes (slow: tens of minutes)"
DESCRIPTION = """\
Compares demo-detector recipes on people they never saw. In each fold one of the seven
bundled people (media/) is held out entirely; of the others, one (P5, or P6 when P5 is held
out) calibrates the thresholds and picks the head's epoch, and the rest train the encoder
and head. For the held-out person each fold reports the largest genuine window logit, the
alerts on their genuine footage under the fold's thresholds, and the clip AUC of each
manipulation type (freeze, shift, stutter, flicker, swap). Every recipe runs on the same
folds from the same crops with the same seeds; the crops are made once and cached in
WORK_DIR (shared with build-demo), each fold's result too, so a second run only trains the
folds it lacks. Prints one table (markdown). Then, for each recipe run on all seven
folds, the cross-fold alert rule (the held-out people's largest genuine logit held over the
alert's windows, plus the spread between folds) and probability map, with each fold judged
by the rule of the other six. It changes nothing in training/demo/ unless --ship-rule is
given.

Recipes trained on synthetic manipulations: a demo, not a deepfake detector.
See docs/demo_detector.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``people-cv`` command."""
    from training.demo_people import PEOPLE

    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("build/demo"),
        help="keeps the videos, crops and fold results between runs (default build/demo)",
    )
    parser.add_argument(
        "--recipes",
        default=None,
        help="comma-separated recipes to compare (default: all: today and the candidates)",
    )
    parser.add_argument(
        "--people",
        type=names([p.key for p in PEOPLE]),
        default=[p.key for p in PEOPLE],
        help="comma-separated people to hold out, one fold each (default: all seven)",
    )
    parser.add_argument(
        "--encoder-steps",
        type=positive,
        default=None,
        help="encoder training steps per fold, for every recipe (default: the shipped "
        "recipe's, 4000; today's build took 2000)",
    )
    parser.add_argument(
        "--jobs", type=positive, default=1, help="folds trained at once (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--ship-rule",
        action="store_true",
        help="write the shipped recipe's cross-fold rule into training/demo/ for build-demo "
        "(needs that recipe at its encoder steps, on all seven folds)",
    )


def names(allowed: list[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of names from ``allowed``."""

    def parse(text: str) -> list[str]:
        chosen = chosen_names(text, allowed)
        if chosen is None:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected names from {', '.join(allowed)}, separated by commas"
            )
        return chosen

    return parse


def chosen_names(text: str, allowed: list[str]) -> list[str] | None:
    """The names of comma-separated ``text``, each once, or None unless all are in
    ``allowed`` (and there is one at least)."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen or any(name not in allowed for name in chosen):
        return None
    return list(dict.fromkeys(chosen))


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the folds and print the table and the wall time."""
    from errors import LipForensicsError
    from training.cv_recipes import RECIPES, SHIPPED
    from training.cv_results import markdown_table
    from training.people_cv import cross_validate

    started = time.perf_counter()
    chosen = chosen_names(args.recipes or ",".join(RECIPES), list(RECIPES))
    if chosen is None:
        raise LipForensicsError(
            f"--recipes {args.recipes!r}: expected names from {', '.join(RECIPES)}, "
            "separated by commas"
        )
    steps = args.encoder_steps or SHIPPED.encoder.steps
    recipes = [RECIPES[name].with_steps(steps) for name in chosen]
    results = cross_validate(args.work_dir, recipes, args.people, args.seed, args.jobs)
    for recipe in recipes:
        print(f"{recipe.name}: {recipe.description}; {steps} encoder steps")
    print(markdown_table(results, chosen))
    rules = cross_fold_rules(results, recipes, args.work_dir / f"seed{args.seed}")
    if args.ship_rule:
        ship_rule(rules)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


def cross_fold_rules(
    results: Sequence[FoldResult], recipes: Sequence[Recipe], folder: Path
) -> dict[tuple[str, int], CrossFoldRule]:
    """Print each recipe's leave-one-out table and rule at its chosen hold (recipes with all
    seven folds), save the rule beside the fold results, and return them by (recipe,
    steps)."""
    from training.cv_thresholds import (
        choose_hold,
        cross_fold_rule,
        leave_one_out,
        markdown_checks,
    )
    from training.demo_people import PEOPLE
    from training.people_cv import RESULTS

    rules: dict[tuple[str, int], CrossFoldRule] = {}
    for recipe in recipes:
        folds = [r for r in results if r.recipe == recipe.name]
        if len(folds) < len(PEOPLE):
            continue
        hold = choose_hold(folds)
        rule = cross_fold_rule(folds, recipe.encoder.steps, hold)
        rule.save(folder / RESULTS / f"{recipe.name}_{recipe.encoder.steps}steps_rule.json")
        rules[recipe.name, recipe.encoder.steps] = rule
        print(f"\n{recipe.name}: each fold under the rule of the other six (hold {hold} windows)")
        print(markdown_checks(leave_one_out(folds, hold), rule))
    return rules


def ship_rule(rules: dict[tuple[str, int], CrossFoldRule]) -> None:
    """Write the shipped recipe's rule where build-demo reads it, or fail clearly."""
    from errors import LipForensicsError
    from training.cv_recipes import SHIPPED
    from training.demo_build import RULE_FILE

    rule = rules.get((SHIPPED.name, SHIPPED.encoder.steps))
    if rule is None:
        raise LipForensicsError(
            f"--ship-rule needs recipe {SHIPPED.name} at {SHIPPED.encoder.steps} encoder steps "
            "on all seven folds"
        )
    print(f"cross-fold rule written to {rule.save(RULE_FILE)}")
