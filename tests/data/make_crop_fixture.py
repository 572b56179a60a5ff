"""Freeze the mouth crops of the MediaPipe Tasks graph (the face stage before the landmark
engine) as ``crops_tasks_graph.npz``, the yardstick the engine's crops are held to.

Written once, at commit d6e07c3 (the face stage and scan reader built on MediaPipe's
``FaceLandmarker``), from the bundled clips: ``live_talking`` (the live face stage on
talking.mp4, 100 frames), ``live_two_faces`` (the live stage with ``max_faces=2`` on
two_faces.mp4: 50 frames x 2 faces, in track-id order) and ``scan_talking`` (the scan's
reader, 12-frame look-ahead smoothing, on talking.mp4), each uint8 (N, 96, 96), with the
frame index of each crop (``*_frames``). Run from the repository root at that commit:
``python tests/data/make_crop_fixture.py``.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np

from stream.faces.reader import extract_mouth_crops
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

DATA = Path(__file__).resolve().parent
OUT = DATA / "crops_tasks_graph.npz"


def live(path: Path, max_faces: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The live face stage's crops (frames in order, faces left to right) and frame indices."""
    stage = FaceStage(max_faces=max_faces)
    crops, indices = [], []
    with VideoFile(path) as video:
        for index, tick in enumerate(islice(resample(video.frames()), frames)):
            found = stage.process(index, tick.item, tick.pts, tick.restart)
            if len(found.crops) != max_faces:
                raise SystemExit(f"{path.name} frame {index}: {len(found.crops)} faces")
            for face in sorted(found.crops, key=lambda c: c.face):
                crops.append(face.crop)
                indices.append(index)
    stage.close()
    return np.stack(crops), np.array(indices)


def main() -> None:
    talking, two = DATA / "talking.mp4", DATA / "two_faces.mp4"
    live_talking, live_talking_frames = live(talking, 1, 100)
    live_two, live_two_frames = live(two, 2, 50)
    scan = extract_mouth_crops(talking)
    np.savez_compressed(
        OUT,
        live_talking=live_talking,
        live_talking_frames=live_talking_frames,
        live_two_faces=live_two,
        live_two_faces_frames=live_two_frames,
        scan_talking=scan.crops,
        scan_talking_frames=np.round(scan.pts * 25).astype(np.int64),
    )
    print(f"{OUT.name}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
