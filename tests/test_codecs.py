"""Cameras and phones send more than H.264: each common codec and container decodes, keeps
its timestamps, and gives mouth crops (real encoders from the PyAV wheel, real MediaPipe)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from stream.faces.reader import extract_mouth_crops
from stream.sources.video_file import VideoFile
from tests.clip_builder import decode

SIZE = (320, 240)
FRAMES = 30

#: (encoder, container suffix, pixel format, encoder options)
CODECS = [
    ("libx265", "mp4", "yuv420p", {"preset": "ultrafast", "x265-params": "log-level=error"}),
    ("libvpx-vp9", "webm", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    ("libsvtav1", "mkv", "yuv420p", {"preset": "12"}),
    ("mjpeg", "avi", "yuvj420p", {}),
    ("mpeg4", "mkv", "yuv420p", {}),
]


@pytest.fixture(scope="module")
def frames(talking_clip) -> list[np.ndarray]:
    return decode(talking_clip, SIZE)[:FRAMES]


def encode(frames: list[np.ndarray], path: Path, codec: str, pix_fmt: str, options: dict) -> Path:
    """``frames`` at 25 fps with ``codec`` in the container ``path``'s suffix names.

    SVT-AV1's encoder switches the calling thread to real-time scheduling (SCHED_FIFO) when
    it may, as root does; left so, every later test and the processes they start would run
    real-time and could starve each other. The thread's scheduling is put back afterwards.
    """
    policy, priority = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        with av.open(str(path), "w") as out:
            stream = out.add_stream(codec, rate=25, options=options)
            stream.width, stream.height, stream.pix_fmt = *SIZE, pix_fmt
            for image in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            out.mux(stream.encode(None))
    finally:
        os.sched_setscheduler(0, policy, priority)
    return path


@pytest.mark.parametrize(
    ("codec", "suffix", "pix_fmt", "options"), CODECS, ids=[codec[0] for codec in CODECS]
)
def test_each_codec_decodes_with_its_timestamps_and_gives_crops(
    frames, tmp_path, codec, suffix, pix_fmt, options
):
    path = encode(frames, tmp_path / f"clip.{suffix}", codec, pix_fmt, options)
    with VideoFile(path) as video:
        decoded = list(video.frames())
    assert video.problem is None
    np.testing.assert_allclose([pts for pts, _ in decoded], np.arange(FRAMES) / 25, atol=1e-3)
    error = np.abs(np.stack([rgb for _, rgb in decoded]).astype(float) - np.stack(frames)).mean()
    assert error < 12, error  # the same pictures, up to the codec's loss
    crops = extract_mouth_crops(path, smoothing="none")
    assert len(crops.crops) >= FRAMES - 2 and crops.runs[0][0] == 0
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # nothing runs real-time after this
