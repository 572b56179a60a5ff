"""The lite landmark network against the full one: CPU, where the crops land, and what the
detector makes of them.

Usage: ``python -m bench.lite_landmarks [VIDEO ...] [--frames 300] [--recipe augmented]
[--encoder-steps 4000] [--seed 0] [--work-dir build/demo]`` (default clips: the bundled
ones, ``tests/data/talking.mp4`` and ``media/*.mp4``).

First table, per clip (its first ``--frames`` 25 fps frames, the live face stage's first
face): process CPU ms per frame of the face stage with each network; the mean absolute
difference (gray levels) of the lite crops from the full ones, and of each from the
reference crops (MediaPipe's Tasks graph, :func:`bench.face_tracking.tasks_graph_scan`);
and how much each network's aligned mouth centre jitters (the standard deviation of its
frame-to-frame second difference, pixels of the 256 x 256 aligned frame: lip motion the
face did not make).

Second table, when ``people-cv`` has saved the recipe's seven folds: each fold's network
(trained on crops of the full network) scores its held-out person's genuine and
manipulated recordings with crops from each network (the scan's path; the lite crops are
kept in ``WORK_DIR/seedS/lite_crops/``): mean clip AUC over the five manipulation types,
``swap``'s AUC, and the largest genuine window logit (stride 5).

A demo's figures on synthetic manipulations, not deepfake detection.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from bench.face_tracking import ROOT, first_ticks, mad, stage_now, tasks_graph_scan
from calibration.metrics import auc
from stream.faces.align import STABLE_POINTS, apply_transform, mean_face, similarity_transform
from stream.faces.engine import StreamFaces
from stream.faces.landmarks import to_ibug68
from stream.faces.models import FaceModels
from training.cv_recipes import RECIPES
from training.cv_results import KINDS
from training.demo_detector import STRIDE, labelled_features, video_crops, window_logits
from training.demo_encoder import Crops
from training.demo_people import PEOPLE
from training.demo_results import GENUINE
from training.people_cv import RESULTS, weights_path

TALKING = ROOT / "tests" / "data" / "talking.mp4"

#: the two landmark networks, by their setting's name
NETWORKS = ("full", "lite")


def mouth_jitter(ticks: list, landmarks: str) -> float:
    """The aligned mouth centre's frame-to-frame second difference (its standard deviation,
    mean of x and y) of the first face tracked by ``landmarks``."""
    models, faces, reference = FaceModels(landmarks=landmarks), StreamFaces(), mean_face()
    stable, centres = list(STABLE_POINTS), []
    for tick in ticks:
        found = faces.track(models, tick.item, tick.pts)
        if found:
            points = to_ibug68(found[0].mesh)
            matrix = similarity_transform(points[stable], reference[stable])
            centres.append(apply_transform(matrix, points[48:68]).mean(axis=0))
    return float(np.diff(np.array(centres), 2, axis=0).std(axis=0).mean())


def clips_table(videos: list[Path], frames: int) -> None:
    """One row per clip: CPU, crop distances, jitter."""
    print(
        "| clip | frames compared | CPU ms/frame full | CPU ms/frame lite | MAD lite vs full "
        "| MAD full vs reference | MAD lite vs reference | mouth jitter full px "
        "| mouth jitter lite px |"
    )
    print("|---" * 9 + "|")
    for video in videos:
        ticks = first_ticks(video, frames)
        (full, full_cpu), (lite, lite_cpu) = (stage_now(ticks, n) for n in NETWORKS)
        reference = tasks_graph_scan(video)
        keys = sorted(full.keys() & lite.keys() & reference.keys())
        distances = ["-"] * 3
        if keys:
            distances = [
                mad(lite, full, keys),
                mad(full, reference, keys),
                mad(lite, reference, keys),
            ]
        jitter = [f"{mouth_jitter(ticks, n):.3f}" for n in NETWORKS]
        print(
            f"| {video.name} | {len(keys)} | {full_cpu:.1f} | {lite_cpu:.1f} | "
            + " | ".join([*distances, *jitter])
            + " |",
            flush=True,
        )


def lite_crops(video: Path, cache: Path) -> Crops:
    """The scan's crops of ``video`` with the lite network (kept in ``cache``)."""
    from stream.faces.reader import extract_mouth_crops

    path = cache / f"{video.stem}.npz"
    if not path.exists():
        mouths = extract_mouth_crops(video, landmarks="lite")
        np.savez(path, crops=mouths.crops, runs=np.asarray(mouths.runs).reshape(-1, 2))
    with np.load(path) as data:
        runs = tuple((int(a), int(b)) for a, b in data["runs"])
        return Crops(video.stem, data["crops"], runs, 0)


def fold_figures(model, folder: Path, person, network: str) -> tuple[float, float, float]:
    """(mean clip AUC, ``swap`` AUC, largest genuine window logit) of a fold's ``model`` on
    ``person``'s recordings cropped with ``network``."""
    windows: dict[str, list[np.ndarray]] = {k: [] for k in (GENUINE, *KINDS)}
    clips: dict[str, list[np.ndarray]] = {k: [] for k in (GENUINE, *KINDS)}
    for recording in person.recordings:
        for kind in windows:
            video = folder / f"{person.key}_{recording.key}_{kind}.mp4"
            if network == "full":
                crops = video_crops(video, 0)[0]
            else:
                crops = lite_crops(video, folder / "lite_crops")
            with torch.no_grad():
                features = labelled_features(model.encoder, crops)
            windows[kind].append(window_logits(model, features, STRIDE))
            clips[kind].append(window_logits(model, features, 25))
    genuine = np.concatenate(clips[GENUINE])
    aucs = []
    for kind in KINDS:
        fakes = np.concatenate(clips[kind])
        aucs.append(auc(np.r_[genuine, fakes], np.r_[np.zeros(genuine.size), np.ones(fakes.size)]))
    return float(np.mean(aucs)), aucs[-1], float(max(w.max() for w in windows[GENUINE]))


def folds_table(folder: Path, recipe_name: str, steps: int) -> None:
    """One row per held-out person and network: the fold network's figures on its crops."""
    from engines.checkpoint import load_checkpoint

    recipe = RECIPES[recipe_name].with_steps(steps)
    if not all(weights_path(folder, recipe, p.key).exists() for p in PEOPLE):
        print(f"\n(no seven folds of {recipe_name} under {folder / RESULTS}: no fold table)")
        return
    (folder / "lite_crops").mkdir(exist_ok=True)
    torch.set_num_threads(1)
    print(
        f"\n{recipe_name}, {steps} encoder steps: each fold's network on its held-out person\n"
        "\n| held out | landmarks | mean clip AUC | `swap` AUC | largest genuine window logit |"
    )
    print("|---" * 5 + "|")
    for person in PEOPLE:
        model = load_checkpoint(weights_path(folder, recipe, person.key)).model.eval()
        for network in NETWORKS:
            mean_auc, swap, top = fold_figures(model, folder, person, network)
            print(
                f"| {person.key} | {network} | {mean_auc:.3f} | {swap:.3f} | {top:+.2f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="*")
    parser.add_argument("--frames", type=int, default=300, help="first N 25 fps frames")
    parser.add_argument("--recipe", default="augmented", choices=sorted(RECIPES))
    parser.add_argument("--encoder-steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    args = parser.parse_args()
    videos = args.videos or [
        ROOT / "tests" / "data" / "talking.mp4",
        *sorted(ROOT.glob("media/*.mp4")),
    ]
    print(f"# {len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}")
    clips_table(videos, args.frames)
    folds_table(args.work_dir / f"seed{args.seed}", args.recipe, args.encoder_steps)


if __name__ == "__main__":
    main()
