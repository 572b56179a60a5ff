"""Reading video files: frames with timestamps, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engines.errors import MediaError
from stream.video_file import VideoFile

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def faststart(tmp_path_factory) -> Path:
    """talking.mp4 remuxed with its index first, so that a cut file still opens."""
    path = tmp_path_factory.mktemp("video") / "faststart.mp4"
    with (
        av.open(str(DATA / "talking.mp4")) as source,
        av.open(str(path), "w", options={"movflags": "faststart"}) as target,
    ):
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    return path


def test_frames_come_with_their_timestamps():
    with VideoFile(DATA / "talking.mp4") as video:
        frames = list(video.frames())
        info = video.info
    assert (info.width, info.height, info.fps, info.frames) == (400, 300, 25.0, 100)
    assert info.duration == pytest.approx(4.0)
    assert len(frames) == 100 and video.problem is None
    np.testing.assert_allclose([t for t, _ in frames], np.arange(100) / 25, atol=1e-6)
    image = frames[0][1]
    assert image.shape == (300, 400, 3) and image.dtype == np.uint8 and image.std() > 10


def test_30_fps_timestamps():
    with VideoFile(DATA / "talking_30fps.mp4") as video:
        pts = [t for t, _ in video.frames()]
    np.testing.assert_allclose(np.diff(pts), 1 / 30, atol=1e-4)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="video file not found"):
        VideoFile(tmp_path / "nope.mp4")


def test_a_folder_is_not_a_video(tmp_path):
    with pytest.raises(MediaError, match="not a file"):
        VideoFile(tmp_path)


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(MediaError, match="cannot read .* as a video") as caught:
        VideoFile(path)
    assert "\n" not in str(caught.value)


def test_file_cut_before_its_index_cannot_be_opened(tmp_path):
    path = tmp_path / "cut.mp4"
    path.write_bytes((DATA / "talking.mp4").read_bytes()[:40_000])
    with pytest.raises(MediaError, match="corrupt, truncated or not a video"):
        VideoFile(path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(5):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(MediaError, match="has no video stream"):
        VideoFile(path)


def test_truncated_file_stops_cleanly_and_says_so(tmp_path, faststart):
    path = tmp_path / "half.mp4"
    data = faststart.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with VideoFile(path) as video:
        frames = list(video.frames())
    assert 10 < len(frames) < 100 and video.decoded == len(frames)
    assert "of 100 frames" in video.problem


def test_corrupt_middle_stops_cleanly_and_says_so(tmp_path, faststart):
    data = bytearray(faststart.read_bytes())
    data[30_000:40_000] = np.random.default_rng(0).integers(0, 256, 10_000, np.uint8).tobytes()
    path = tmp_path / "garbled.mp4"
    path.write_bytes(bytes(data))
    with VideoFile(path) as video:
        frames = list(video.frames())
    assert 0 < len(frames) < 100
    assert video.problem and "corrupt or truncated" in video.problem
