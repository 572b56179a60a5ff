"""Leave-one-person-out cross-validation of demo-detector recipes (``run_stream.py people-cv``).

**A demo, not a deepfake detector**: every recipe here trains on synthetic mouth
manipulations; the figures say how a recipe does on people it never saw, nothing about
real deepfakes.

1. Once, shared by every fold and recipe and by ``build-demo``: every person's versions and
   their crops (:func:`~training.fold_training.cache_crops`).
2. Per fold (:func:`~training.cv_folds.fold_for`) and recipe
   (:mod:`training.cv_recipes`), in a fresh process on one torch thread: the fold's network
   (:func:`~training.fold_training.train_fold`), thresholds from the calibration people's
   genuine footage; then the held-out person's genuine and manipulated recordings, scored
   (:mod:`training.cv_results`). :mod:`training.cv_thresholds` then fits the rule that
   holds across folds.

Each fold's result is saved as JSON beside the crops with the recipe it ran, so a second
run only trains the folds it lacks (or whose recipe changed); its network is saved beside it.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from training.cv_folds import Fold
from training.cv_recipes import Recipe
from training.cv_results import FoldResult, held_out_result
from training.demo_detector import STRIDE
from training.demo_people import PEOPLE
from training.fold_training import cache_crops, train_fold

Log = Callable[[str], None]
T = TypeVar("T")
#: the folder (inside the cache's seed folder) that keeps each fold's result
RESULTS = "people_cv"


def run_fold(folder: Path, recipe: Recipe, fold: Fold, seed: int, log: Log) -> FoldResult:
    """Train ``recipe`` on ``fold`` (:func:`~training.fold_training.train_fold`), save its
    network, and score its held-out person under thresholds from its calibration person."""
    from calibration.thresholds import calibrate
    from engines.checkpoint import save_checkpoint

    started = time.perf_counter()
    trained = train_fold(folder, recipe, fold, seed, log)
    save_checkpoint(weights_path(folder, recipe, fold.held_out), trained.model)
    calibration_genuine = trained.calibration_genuine()
    thresholds, _fit = calibrate(
        calibration_genuine,
        [s.windows for s in trained.calibration if s.label == 1],
        stride=STRIDE,
        weights_sha256="",
    )
    return held_out_result(
        recipe.name,
        fold,
        trained.held_out,
        thresholds.policy,
        recipe.train_kinds,
        (thresholds.evidence.max_genuine_logit, trained.early_stopping_auc),
        calibration_genuine,
        time.perf_counter() - started,
    )


def result_path(folder: Path, recipe: Recipe, held_out: str) -> Path:
    """Where the fold holding out ``held_out`` keeps ``recipe``'s result (one file per
    encoder step count, so runs with other ``--encoder-steps`` keep theirs)."""
    return folder / RESULTS / f"{recipe.name}_{recipe.encoder.steps}steps_{held_out}.json"


def weights_path(folder: Path, recipe: Recipe, held_out: str) -> Path:
    """Where the fold holding out ``held_out`` keeps ``recipe``'s trained network (so its
    held-out person can be played through the live paths afterwards)."""
    return result_path(folder, recipe, held_out).with_suffix(".pth")


def saved_result(path: Path, recipe: Recipe, seed: int) -> FoldResult | None:
    """The fold result saved at ``path`` if it was made by this ``recipe`` and ``seed``."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("recipe") != recipe.key() or saved.get("seed") != seed:
        return None
    return FoldResult(**saved["result"])


def saved_folds(folder: Path, recipe: Recipe, seed: int) -> dict[str, FoldResult]:
    """Every fold of ``recipe`` that ``people-cv`` saved under ``folder`` for ``seed``, by
    held-out person (people without one left out)."""
    saved = {p.key: saved_result(result_path(folder, recipe, p.key), recipe, seed) for p in PEOPLE}
    return {person: result for person, result in saved.items() if result is not None}


def save_result(path: Path, recipe: Recipe, seed: int, result: FoldResult) -> None:
    """Write ``result`` with the recipe and seed that made it (through a partial file)."""
    partial = path.with_name(path.name + ".partial")
    document = {"recipe": recipe.key(), "seed": seed, "result": asdict(result)}
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def in_processes(
    function: Callable[..., T], calls: Sequence[tuple], jobs: int, done: Callable[[int, T], None]
) -> None:
    """``function(*call)`` for every call, ``jobs`` at a time, each in a fresh process
    (spawned: no state shared with this one); ``done(index, result)`` as each finishes, in
    the order of ``calls``. Interrupted (Ctrl-C, or SIGTERM through the command line), or
    when a call fails, the calls still running are stopped at once rather than waited for
    (a fold takes minutes). A worker that dies (out of memory) raises ``BrokenProcessPool``."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
        try:
            running = [pool.submit(function, *call) for call in calls]
            for index, future in enumerate(running):
                done(index, future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in multiprocessing.active_children():  # the pool's: people-cv has no other
                worker.terminate()
            raise


def _fold_task(folder: Path, recipe: Recipe, fold: Fold, seed: int) -> FoldResult:
    """One fold in a worker process, its log lines prefixed with recipe and person."""
    prefix = f"[{recipe.name} without {fold.held_out}]"
    result = run_fold(folder, recipe, fold, seed, lambda line: print(prefix, line, flush=True))
    save_result(result_path(folder, recipe, fold.held_out), recipe, seed, result)
    return result


def cross_validate(
    work_dir: Path,
    recipes: Sequence[Recipe],
    held_out: Sequence[str],
    seed: int = 0,
    jobs: int = 1,
    log: Log = print,
) -> list[FoldResult]:
    """Every recipe on the fold of every person in ``held_out``, from crops cached once
    under ``work_dir``; folds saved by an earlier run with the same recipe and seed are
    reused, the others run in ``jobs`` processes (a fresh one per fold). Results in fold
    order, recipes side by side."""
    log("crops of every person's genuine, manipulated and perturbed versions (cached)")
    folder = cache_crops(work_dir, seed, log)
    for extra in range(1, max(r.fake_variants for r in recipes)):
        cache_crops(work_dir, seed + extra, log)
    (folder / RESULTS).mkdir(exist_ok=True)
    everyone = [p.key for p in PEOPLE]
    tasks = [(r, r.fold(p, everyone)) for p in held_out for r in recipes]
    found: dict[tuple[str, str], FoldResult] = {}
    for recipe, fold in tasks:
        saved = saved_result(result_path(folder, recipe, fold.held_out), recipe, seed)
        if saved is not None:
            found[recipe.name, fold.held_out] = saved
            log(f"{recipe.name} without {fold.held_out}: saved result reused")
    pending = [(r, f) for r, f in tasks if (r.name, f.held_out) not in found]
    log(f"{len(pending)} folds to train, {jobs} at a time")

    def done(index: int, result: FoldResult) -> None:
        recipe, fold = pending[index]
        found[recipe.name, fold.held_out] = result
        log(f"{recipe.name} without {fold.held_out}: done in {result.seconds:.0f} s")

    calls = [(folder, recipe, fold, seed) for recipe, fold in pending]
    in_processes(_fold_task, calls, jobs, done)
    return [found[r.name, f.held_out] for r, f in tasks]
