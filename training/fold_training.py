"""Training one fold's detector from the cached crops: shared by ``people-cv`` and
``build-demo`` (the shipped detector is one fold: the one that holds the demo person out).

**A demo, not a deepfake detector**: every network here trains on synthetic mouth
manipulations.

* :func:`cache_crops`: once, every person's genuine recordings at 25 fps, all five
  manipulations of them (:data:`~training.cv_results.KINDS`) and, for the people who may
  calibrate (:data:`~training.cv_folds.CALIBRATION_ORDER`), the four perturbed genuine
  versions, as H.264 videos with their mouth crops through the real pipeline.
* :func:`train_fold`: a recipe on a fold, on one torch thread (the same seed gives the same
  network on any machine): the encoder from scratch on the training people, the head with
  its epoch chosen on the calibration people, and every calibration and held-out version
  scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.crop_augment import SHOWN_FPS, slowed
from training.cv_folds import CALIBRATION_ORDER, Fold
from training.cv_recipes import Recipe
from training.cv_results import KINDS
from training.demo_detector import (
    CALIBRATION_PERTURBATIONS,
    DEMO_DONOR,
    SWAP_DONOR,
    Version,
    read_footage,
    recording_video,
    version_video,
    video_crops,
)
from training.demo_encoder import Crops
from training.demo_people import PEOPLE, Person, Recording
from training.demo_results import GENUINE, ScoredVideo
from training.manipulations import Footage

if TYPE_CHECKING:
    from engines.model import LipForensics

Log = Callable[[str], None]


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


def held_out_versions(person: Person) -> list[Version]:
    """The versions a fold scores of its held-out ``person``: genuine and every manipulation
    (not the perturbed genuine ones)."""
    return [v for v in cv_versions(person) if v.kind in (GENUINE, *KINDS)]


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


@dataclass(frozen=True)
class TrainedFold:
    """A fold's trained network and what it scored: the training people's genuine videos,
    the calibration people's versions and the held-out person's, and the early-stopping
    AUC (on the calibration people)."""

    model: LipForensics
    training_genuine: list[ScoredVideo]
    calibration: list[ScoredVideo]
    held_out: list[ScoredVideo]
    early_stopping_auc: float

    def calibration_genuine(self) -> list[np.ndarray]:
        """The window logits of the calibration people's genuine footage (one sequence per
        video: the clips and their perturbed versions)."""
        return [s.windows for s in self.calibration if s.label == 0]


def slowed_copies(videos: Sequence[Crops], fps: tuple[float, float], seed: int) -> list[Crops]:
    """Each of ``videos`` as a source of a frame rate drawn from ``fps`` shows it at 25 fps
    (:func:`~training.crop_augment.slowed`; a generator of its own, seeded by ``seed``)."""
    rng = np.random.default_rng([seed, 25])
    copies = []
    for video in videos:
        rate = float(rng.uniform(*fps))
        frames = slowed(video.crops, video.runs, rate, float(rng.uniform(0, SHOWN_FPS / rate)))
        copies.append(replace(video, name=f"{video.name}@{rate:.0f}fps", crops=frames))
    return copies


def _version_crops(folder: Path, version: Version) -> Crops:
    """The cached crops of ``version`` in ``folder``, marked with the recording they come
    from (:attr:`~training.demo_encoder.Crops.source`)."""
    crops = video_crops(folder / f"{version.name}.mp4", version.label)[0]
    return replace(crops, source=f"{version.person.key}_{version.recording.key}")


def variant_folders(folder: Path, seed: int, variants: int) -> list[Path]:
    """The crop folders of ``variants`` differently seeded builds, ``seed``'s (``folder``)
    first: :func:`cache_crops` names them by seed, side by side."""
    return [folder.with_name(f"seed{seed + k}") for k in range(variants)]


def train_fold(folder: Path, recipe: Recipe, fold: Fold, seed: int, log: Log) -> TrainedFold:
    """Train ``recipe`` on ``fold`` from the cached crops in ``folder`` (and, for a recipe
    with several manipulation variants, in the folders of the seeds after ``seed``) and
    score its calibration and held-out people (torch and OpenCV on one thread: the same seed
    gives the same network, and folds trained side by side use one core each)."""
    import cv2
    import torch

    from engines.model import LipForensics
    from training.demo_detector import labelled_features, scored
    from training.demo_encoder import pretrain_encoder
    from training.finetune import train_head

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
    held = held_out_versions(next(p for p in PEOPLE if p.key == fold.held_out))
    crops = {v.name: _version_crops(folder, v) for v in training + calibration + held}
    extra = [
        _version_crops(other, v)
        for other in variant_folders(folder, seed, recipe.fake_variants)[1:]
        for v in training
        if v.label == 1
    ]
    model = LipForensics(recipe.model)
    training_crops = [crops[v.name] for v in training] + extra
    pretrain_encoder(model.encoder, training_crops, recipe.encoder, seed, log)
    features = {name: labelled_features(model.encoder, c) for name, c in crops.items()}
    also = [labelled_features(model.encoder, c) for c in extra]
    if recipe.slowed_fps is not None:
        also += [
            labelled_features(model.encoder, c)
            for c in slowed_copies(training_crops, recipe.slowed_fps, seed)
        ]
    stopping = train_head(
        model.head,
        [features[v.name] for v in training] + also,
        [features[v.name] for v in calibration],
        replace(recipe.finetune, seed=seed),
        log=log,
    )
    return TrainedFold(
        model=model,
        training_genuine=[scored(model, v, features[v.name]) for v in training if v.label == 0],
        calibration=[scored(model, v, features[v.name]) for v in calibration],
        held_out=[scored(model, v, features[v.name]) for v in held],
        early_stopping_auc=stopping.best_auc,
    )
