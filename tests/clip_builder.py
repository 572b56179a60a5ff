"""Build small test clips from the bundled ones: decode at one size, concatenate, encode H.264."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np


def decode(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame of ``path`` as RGB, scaled to ``size`` (width, height)."""
    with av.open(str(path)) as clip:
        return [
            frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            for frame in clip.decode(video=0)
        ]


def looped(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames: ``frames`` repeated from the start as often as needed."""
    return [frames[k % len(frames)] for k in range(count)]


def write_clip(path: Path, images: Iterable[np.ndarray], size: tuple[int, int]) -> Path:
    """Encode RGB ``images`` of ``size`` as a 25 fps H.264 MP4 at ``path``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path
