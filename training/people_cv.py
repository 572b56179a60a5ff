"""Leave-one-person-out cross-validation of demo-detector recipes (``run_stream.py people-cv``).

**A demo, not a deepfake detector**: every recipe here trains on synthetic mouth
manipulations; the figures say how a recipe does on people it never saw, nothing about
real deepfakes.

1. Once, shared by every fold and recipe: each person's genuine recordings at 25 fps, all
   five manipulations of them (:data:`~training.cv_results.KINDS`) and, for the people who
   may calibrate (:data:`~training.cv_folds.CALIBRATION_ORDER`), the four perturbed genuine
   versions, as H.264 videos, with their mouth crops through the real pipeline. They are
   the files ``build-demo`` makes (same names, seeds and folder), so the two share a cache.
2. Per fold (:func:`~training.cv_folds.fold_for`) and recipe
   (:mod:`training.cv_recipes`), in a fresh process on one torch thread: the encoder from
   scratch on the training people, the head with its epoch chosen on the calibration
   people, thresholds from the calibration people's genuine footage; then the held-out
   person's genuine and manipulated recordings, scored (:mod:`training.cv_results`).

Each fold's result is saved as JSON beside the crops with the recipe it ran, so a second
run only trains the folds it lacks (or whose recipe changed).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from training.cv_folds import CALIBRATION_ORDER, Fold, fold_for
from training.cv_recipes import Recipe
from training.cv_results import KINDS, FoldResult, held_out_result
from training.demo_detector import (
    CALIBRATION_PERTURBATIONS,
    DEMO_DONOR,
    STRIDE,
    SWAP_DONOR,
    Version,
    read_footage,
    recording_video,
    version_video,
    video_crops,
)
from training.demo_people import PEOPLE, Person, Recording
from training.demo_results import GENUINE
from training.manipulations import Footage

Log = Callable[[str], None]
#: the folder (inside the cache's seed folder) that keeps each fold's result
RESULTS = "people_cv"


def swap_donor(person: str) -> str:
    """Whose mouth ``swap`` pastes into ``person``: build-demo's donor, or for the donor
    themself the demo clips' donor."""
    return DEMO_DONOR if person == SWAP_DONOR else SWAP_DONOR


def cv_versions(person: Person) -> list[Version]:
    """Every version the cross-validation uses of ``person``'s recordings: genuine, the
    five manipulations and, for the people who may calibrate, the perturbed genuine ones."""
    perturbed = CALIBRATION_PERTURBATIONS if person.key in CALIBRATION_ORDER else ()
    return [
        Version(person, recording, kind, label)
        for recording in person.recordings
        for kinds, label in (((GENUINE, *perturbed), 0), (KINDS, 1))
        for kind in kinds
    ]


def cache_crops(work_dir: Path, seed: int, log: Log) -> Path:
    """Make every :func:`cv_versions` video and its crops under ``work_dir/seed<seed>``
    (skipping what is there already); return that folder."""
    folder = work_dir / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    missing = {
        p.key: [v for v in cv_versions(p) if not (folder / f"{v.name}.npz").exists()]
        for p in PEOPLE
    }
    if not any(missing.values()):
        return folder
    donors = {key: _genuine_footage(folder, key) for key in (SWAP_DONOR, DEMO_DONOR)}
    for person in PEOPLE:
        for recording in dict.fromkeys(v.recording for v in missing[person.key]):
            footage = _recording_footage(folder, person, recording)
            for version in (v for v in missing[person.key] if v.recording == recording):
                path = folder / f"{version.name}.mp4"
                if version.kind != GENUINE:
                    donor = donors[swap_donor(person.key)]
                    version_video(version, footage, donor, path, version.seed(seed))
                video_crops(path, version.label)
                log(f"    {path.name}")
    return folder


def _recording_footage(folder: Path, person: Person, recording: Recording) -> Footage:
    """The 25 fps frames and landmarks of one of ``person``'s recordings (made if missing)."""
    version = Version(person, recording, GENUINE, 0)
    path = recording_video(version.recording, folder / f"{version.name}.mp4")
    return read_footage(path, video_crops(path, 0)[1])


def _genuine_footage(folder: Path, key: str) -> Footage:
    """The footage of person ``key``'s first recording."""
    person = next(p for p in PEOPLE if p.key == key)
    return _recording_footage(folder, person, person.recordings[0])


def run_fold(folder: Path, recipe: Recipe, fold: Fold, seed: int, log: Log) -> FoldResult:
    """Train and calibrate ``recipe`` on ``fold`` from the cached crops in ``folder`` and
    score its held-out person (torch and OpenCV on one thread: the same seed gives the same
    result, and ``jobs`` folds use ``jobs`` cores)."""
    import cv2
    import torch

    from calibration.thresholds import calibrate
    from engines.model import LipForensics
    from training.demo_detector import labelled_features, scored
    from training.demo_encoder import pretrain_encoder
    from training.finetune import train_head

    started = time.perf_counter()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # the augmentation's resizes: one core per fold
    torch.manual_seed(seed)
    versions = {p.key: cv_versions(p) for p in PEOPLE}
    training = [
        v for k in fold.train for v in versions[k] if v.kind in (GENUINE, *recipe.train_kinds)
    ]
    calibration = [
        v
        for k in fold.calibrate
        for v in versions[k]
        if v.label == 0 or v.kind in recipe.train_kinds
    ]
    held = [v for v in versions[fold.held_out] if v.kind in (GENUINE, *KINDS)]
    crops = {
        v.name: video_crops(folder / f"{v.name}.mp4", v.label)[0]
        for v in training + calibration + held
    }
    model = LipForensics(recipe.model)
    pretrain_encoder(model.encoder, [crops[v.name] for v in training], recipe.encoder, seed, log)
    features = {name: labelled_features(model.encoder, c) for name, c in crops.items()}
    stopping = train_head(
        model.head,
        [features[v.name] for v in training],
        [features[v.name] for v in calibration],
        replace(recipe.finetune, seed=seed),
        log=log,
    )
    scores = {v.name: scored(model, v, features[v.name]) for v in calibration + held}
    calibration_genuine = [scores[v.name].windows for v in calibration if v.label == 0]
    thresholds, _fit = calibrate(
        calibration_genuine,
        [scores[v.name].windows for v in calibration if v.label == 1],
        stride=STRIDE,
        weights_sha256="",
    )
    return held_out_result(
        recipe.name,
        fold,
        [scores[v.name] for v in held],
        thresholds.policy,
        recipe.train_kinds,
        (thresholds.evidence.max_genuine_logit, stopping.best_auc),
        calibration_genuine,
        time.perf_counter() - started,
    )


def result_path(folder: Path, recipe: Recipe, held_out: str) -> Path:
    """Where the fold holding out ``held_out`` keeps ``recipe``'s result (one file per
    encoder step count, so runs with other ``--encoder-steps`` keep theirs)."""
    return folder / RESULTS / f"{recipe.name}_{recipe.encoder.steps}steps_{held_out}.json"


def saved_result(path: Path, recipe: Recipe, seed: int) -> FoldResult | None:
    """The fold result saved at ``path`` if it was made by this ``recipe`` and ``seed``."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("recipe") != repr(recipe) or saved.get("seed") != seed:
        return None
    return FoldResult(**saved["result"])


def save_result(path: Path, recipe: Recipe, seed: int, result: FoldResult) -> None:
    """Write ``result`` with the recipe and seed that made it (through a partial file)."""
    partial = path.with_name(path.name + ".partial")
    document = {"recipe": repr(recipe), "seed": seed, "result": asdict(result)}
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


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
    (folder / RESULTS).mkdir(exist_ok=True)
    everyone = [p.key for p in PEOPLE]
    tasks = [(r, fold_for(p, everyone, r.calibrators)) for p in held_out for r in recipes]
    found: dict[tuple[str, str], FoldResult] = {}
    for recipe, fold in tasks:
        saved = saved_result(result_path(folder, recipe, fold.held_out), recipe, seed)
        if saved is not None:
            found[recipe.name, fold.held_out] = saved
            log(f"{recipe.name} without {fold.held_out}: saved result reused")
    pending = [(r, f) for r, f in tasks if (r.name, f.held_out) not in found]
    log(f"{len(pending)} folds to train, {jobs} at a time")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {
            (r.name, f.held_out): pool.submit(_fold_task, folder, r, f, seed) for r, f in pending
        }
        for (name, person), future in futures.items():
            found[name, person] = future.result()
            log(f"{name} without {person}: done in {found[name, person].seconds:.0f} s")
    return [found[r.name, f.held_out] for r, f in tasks]
