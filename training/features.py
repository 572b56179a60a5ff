"""A cache of per-frame features, so the temporal head can be trained without the encoder.

The paper fine-tunes with the encoder frozen. A frame's feature depends only on the two
frames either side of it *within its clip* (zeros beyond the clip's ends; the keys of
:mod:`engines.frames`), so each frame has five possible features: the interior one, and
four edge variants for when it is one of the first two or last two frames of a clip. The
cache holds every frame's interior feature and the edge variants of the clips that start
every :data:`GRID` frames from the start of each run (about 1.8 encodings per frame at a
grid of 5, as the live pipeline at stride 5): the features of those clips, assembled by
:func:`clip_features`, are exact (the head's logit on them equals the whole network's logit
on that clip).

One ``.npz`` file per video holds ``features`` (float16, (N, 5, D)), the crops' ``pts``
(seconds), ``runs`` (start, stop) of consecutive 25 fps frames, ``frames`` (25 fps frames
examined), ``grid``, ``source`` (the video's path) and ``weights`` (the SHA-256 of the weight file,
so a cache made with other weights is recomputed rather than reused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engines.frames import FrameKey, five_frame_inputs, window_keys
from engines.method import CLIP_FRAMES, normalise_crops
from engines.model import FrameEncoder

if TYPE_CHECKING:
    from stream.faces.reader import Progress

#: the cache's five slots per frame, as the (before, after) zero neighbours of the
#: :data:`~engines.frames.FrameKey` each holds; slot 0 is the frame inside its run
VARIANTS = ((0, 0), (2, 0), (1, 0), (0, 1), (0, 2))
#: clips whose features are exact start every GRID frames from the start of a run
GRID = 5
#: file name suffix of a cached video
SUFFIX = ".features.npz"


@dataclass(frozen=True)
class VideoFeatures:
    """The cached features of one video (see the module docstring for the fields)."""

    features: np.ndarray
    pts: np.ndarray
    runs: tuple[tuple[int, int], ...]
    frames: int
    grid: int
    source: str
    weights: str

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` (to a temporary name first, so a crash leaves no half file)."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(
            partial,
            features=self.features.astype(np.float16),
            pts=self.pts,
            runs=np.asarray(self.runs, dtype=np.int64).reshape(-1, 2),
            frames=np.int64(self.frames),
            grid=np.int64(self.grid),
            source=np.str_(self.source),
            weights=np.str_(self.weights),
        )
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> VideoFeatures:
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                features=data["features"],
                pts=data["pts"],
                runs=tuple((int(a), int(b)) for a, b in data["runs"]),
                frames=int(data["frames"]),
                grid=int(data["grid"]),
                source=str(data["source"]),
                weights=str(data["weights"]),
            )


def requests(runs: tuple[tuple[int, int], ...], grid: int) -> list[tuple[FrameKey, int]]:
    """The (key, slot) features to compute, each once: every frame's feature inside its
    whole run (slot 0; zeros only at the run's ends), and the edge variants (slots 1-4,
    see :data:`VARIANTS`) that clips starting every ``grid`` frames from each run's start
    need."""
    wanted: list[tuple[FrameKey, int]] = []
    for start, stop in runs:
        wanted += [(key, 0) for key in window_keys(start, stop - start)]
        for first in range(start, stop - CLIP_FRAMES + 1, grid):
            edges = [key for key in window_keys(first, CLIP_FRAMES) if key[1:] != (0, 0)]
            wanted += [(key, VARIANTS.index(key[1:])) for key in edges]
    return list(dict.fromkeys(wanted))


@torch.no_grad()
def encode_video(
    encoder: FrameEncoder,
    crops: np.ndarray,
    runs: tuple[tuple[int, int], ...],
    grid: int = GRID,
    batch: int = 64,
    progress: Progress | None = None,
) -> np.ndarray:
    """Features of uint8 (N, 96, 96) crops as float32 (N, 5, D): every frame's interior
    feature, and the edge variants of clips starting every ``grid`` frames from each run's
    start (other variant slots repeat the interior feature; frames outside every run get
    zeros). ``progress(done, total)`` is called per batch."""
    encoder.eval()
    normalised = normalise_crops(crops)
    wanted = requests(runs, grid)
    if not wanted:
        raise ValueError("no crops to encode")
    out: np.ndarray | None = None
    for first in range(0, len(wanted), batch):
        chunk = wanted[first : first + batch]
        windows = five_frame_inputs(normalised, [key for key, _ in chunk])
        features = encoder.encode_frames(torch.from_numpy(windows)).numpy()
        if out is None:
            out = np.zeros((len(crops), len(VARIANTS), features.shape[1]), np.float32)
        for (key, slot), feature in zip(chunk, features, strict=True):
            if slot == 0:
                out[key[0], :] = feature  # every slot starts as the interior feature
            else:
                out[key[0], slot] = feature
        if progress is not None:
            progress(first + len(chunk), len(wanted))
    assert out is not None
    return out


def clip_features(features: np.ndarray, start: int, length: int = CLIP_FRAMES) -> np.ndarray:
    """The (length, D) features of the clip of frames ``start .. start + length - 1`` from a
    (N, 5, D) cache: interior features, with the edge variants at the clip's two ends
    (exact for clips on the cache's grid)."""
    rows = features[start : start + length, 0].copy()
    for position, (frame, before, after) in enumerate(window_keys(start, length)):
        if (before, after) != (0, 0):
            rows[position] = features[frame, VARIANTS.index((before, after))]
    return rows
