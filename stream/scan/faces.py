"""Every face of a file, scored the paper's way: for a video with several people (a
recorded call), each face's own clips.

The scan's main pass follows one face, as the reference does. When it saw more than one
face, this second pass runs the live face stage over the file (every face followed, each
under its own id, new ones found within a second), and scores each face's consecutive
frames in 25-frame clips with the same scorer; a face missing for a frame starts a new
run, so no clip spans a gap. Crops come from the live stage (no look-ahead smoothing), so a
face's clip logits can differ slightly from the main pass's for the same face.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.backends import Backend
from engines.clips import StreamScorer
from stream.alerts.policy import Level, PolicyConfig, replay
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile


@dataclass
class FaceScan:
    """One face's scan (JSON: :meth:`to_dict`, an entry of ``scan --json``'s ``faces``).

    Attributes:
        face: the face's id in the file (the live stage's track id).
        box: where the face was in its first scored frame, (x0, y0, x1, y1) in 0..1.
        clip_starts, clip_logits: each clip's start (seconds) and logit.
        video_logit: the mean of the face's clip logits.
        level, alerts: the highest level the live policy reached on them, and its alerts.
    """

    face: int
    box: tuple[float, float, float, float]
    clip_starts: list[float] = field(default_factory=list)
    clip_logits: list[float] = field(default_factory=list)
    video_logit: float = 0.0
    level: str = str(Level.CLEAR)
    alerts: int = 0

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form."""
        return {
            "face": self.face,
            "box": [round(v, 4) for v in self.box],
            "clip_starts": self.clip_starts,
            "clip_logits": self.clip_logits,
            "video_logit": self.video_logit,
            "level": self.level,
            "alerts": self.alerts,
        }


def scan_every_face(
    path: Path,
    backend: Backend,
    stride: int,
    *,
    policy: PolicyConfig,
    preprocess: Callable[[np.ndarray], np.ndarray],
) -> list[FaceScan]:
    """Each face of the video ``path`` with at least one clip, by id (see the module doc)."""
    stage = FaceStage()
    scorers: dict[int, StreamScorer] = {}
    boxes: dict[int, tuple[float, float, float, float]] = {}
    runs: dict[int, tuple[int, int]] = {}  # face -> (its run number, the last index seen)
    try:
        with VideoFile(path) as video:
            for index, tick in enumerate(resample(video.frames())):
                for face in stage.process(index, tick.item, tick.pts, tick.restart).crops:
                    run, last = runs.get(face.face, (0, index - 1))
                    run = run + 1 if last != index - 1 or tick.restart else run
                    runs[face.face] = (run, index)
                    if face.face not in scorers:
                        scorers[face.face] = StreamScorer(backend, stride, preprocess=preprocess)
                        boxes[face.face] = face.box
                    scorers[face.face].push(tick.pts, face.crop, run)
    finally:
        stage.close()
    scans = []
    for face, scorer in sorted(scorers.items()):
        logits = scorer.finish()
        if not len(logits):
            continue
        level, alerts = replay(logits, policy)
        scans.append(
            FaceScan(
                face=face,
                box=boxes[face],
                clip_starts=[round(float(t), 3) for t in scorer.clip_times],
                clip_logits=[float(x) for x in logits],
                video_logit=float(np.mean(logits)),
                level=str(level),
                alerts=alerts,
            )
        )
    return scans
