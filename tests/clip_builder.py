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


def write_clip(
    path: Path, images: Iterable[np.ndarray], size: tuple[int, int], *, mjpeg: bool = False
) -> Path:
    """Encode RGB ``images`` of ``size`` as a 25 fps H.264 MP4 at ``path`` (or MJPEG, in
    the container ``path``'s suffix names: cheap to encode at any size)."""
    with av.open(str(path), "w") as out:
        if mjpeg:
            stream = out.add_stream("mjpeg", rate=25)
            stream.pix_fmt = "yuvj420p"
        else:
            stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            stream.pix_fmt = "yuv420p"
        stream.width, stream.height = size
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def remuxed(source: Path, target: Path, **options: str) -> Path:
    """``source``'s video packets in another container (chosen by ``target``'s suffix)."""
    with av.open(str(source)) as original, av.open(str(target), "w", options=options) as copy:
        stream = copy.add_stream_from_template(original.streams.video[0])
        for packet in original.demux(original.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                copy.mux(packet)
    return target


def garbled(source: Path, target: Path, start: int = 30_000, length: int = 10_000) -> Path:
    """A copy of ``source`` with ``length`` bytes from ``start`` replaced by noise (a file
    corrupted mid-way: it opens, then decoding stops)."""
    data = bytearray(source.read_bytes())
    data[start : start + length] = (
        np.random.default_rng(0).integers(0, 256, length, np.uint8).tobytes()
    )
    target.write_bytes(bytes(data))
    return target
