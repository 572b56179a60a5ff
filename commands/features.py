"""`features`: encode every frame of some videos once and cache the features for fine-tuning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "cache per-frame encoder features of videos (for fine-tuning with the encoder frozen)"
DESCRIPTION = """\
Run the frozen frame encoder (3D front end + ResNet-18 trunk) of --weights over every frame
of each video, once, and store the features (float16) with the crops' times in
OUT/<video name>.features.npz. Each frame gets its interior feature, and the frames at the
ends of clips starting every 5 frames also their zero-padded variants, so the features of
those clips are exact (finetune's --clip-stride must be a multiple of 5).

Resumable: a video whose file already exists for the same weights is skipped. VIDEOS may
be video files, .npy mouth crops (as written by `crops`), or folders of them."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``features`` command."""
    parser.add_argument("videos", type=Path, nargs="+", metavar="VIDEO", help="videos or folders")
    parser.add_argument("--weights", type=Path, required=True, help="LipForensics checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="folder for the feature files")


def run(args: argparse.Namespace) -> int:
    """Encode each video not cached yet; print one line per video."""
    from commands.progress import ProgressBar
    from engines.checkpoint import load_checkpoint
    from engines.digest import file_sha256
    from errors import LipForensicsError, MediaError
    from stream.scan.scanner import read_input
    from training.features import GRID, SUFFIX, VideoFeatures, encode_video

    videos = expand_videos(args.videos)
    names = [video.stem for video in videos]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LipForensicsError(f"two inputs share the name {duplicates[0]!r}; rename one")
    loaded = load_checkpoint(args.weights)
    for note in loaded.notes:
        print(f"warning: {note}", file=sys.stderr)
    weights = file_sha256(args.weights)
    args.out.mkdir(parents=True, exist_ok=True)
    for number, video in enumerate(videos, start=1):
        target = args.out / (video.stem + SUFFIX)
        prefix = f"[{number}/{len(videos)}] {video}"
        if target.exists() and _cached_for(target, weights):
            print(f"{prefix}: cached, skipped")
            continue
        try:
            with ProgressBar("mouth crops") as bar:
                mouths = read_input(video, progress=bar)
        except MediaError as error:
            print(f"{prefix}: skipped: {error}")
            continue
        if not len(mouths.crops):
            print(f"{prefix}: skipped: no face found")
            continue
        with ProgressBar("features") as bar:
            features = encode_video(loaded.model.encoder, mouths.crops, mouths.runs, progress=bar)
        cached = VideoFeatures(
            features, mouths.pts, mouths.runs, mouths.frames, GRID, str(video), weights
        )
        cached.save(target)
        print(f"{prefix}: {len(features)} frames -> {target}")
    return 0


def expand_videos(paths: list[Path]) -> list[Path]:
    """The given files, and the video files (sorted) inside the given folders."""
    from errors import MediaError
    from stream.sources.video_file import VIDEO_SUFFIXES

    videos: list[Path] = []
    for path in paths:
        if path.is_dir():
            videos += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.exists():
            videos.append(path)
        else:
            raise MediaError(f"input not found: {path} (expected a video file or a folder)")
    if not videos:
        raise MediaError("no video files among the inputs")
    return videos


def _cached_for(path: Path, weights: str) -> bool:
    """Whether ``path`` is a readable feature file made with ``weights``."""
    from training.features import VideoFeatures

    try:
        return VideoFeatures.load(path).weights == weights
    except (OSError, ValueError, KeyError):
        return False
