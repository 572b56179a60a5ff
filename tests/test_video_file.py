"""Reading video files: frames with timestamps, and one-line errors for bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest

from errors import LipForensicsWarning, MediaError
from stream.sources.video_file import VideoFile
from tests.clip_builder import garbled, remuxed, write_clip
from tests.live_support import TALKING

DATA = Path(__file__).parent / "data"


def test_frames_come_with_their_timestamps():
    with VideoFile(TALKING) as video:
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
    path.write_bytes((TALKING).read_bytes()[:40_000])
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
    with VideoFile(garbled(faststart, tmp_path / "garbled.mp4")) as video:
        frames = list(video.frames())
    assert 0 < len(frames) < 100
    assert video.problem and "corrupt or truncated" in video.problem


def test_a_cut_matroska_file_without_a_frame_count_is_called_truncated(tmp_path):
    whole = remuxed(TALKING, tmp_path / "talking.mkv")
    with VideoFile(whole) as video:
        assert len(list(video.frames())) == 100 and video.info.frames == 0
    assert video.problem is None
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with VideoFile(cut) as video:
        frames = list(video.frames())
    assert 10 < len(frames) < 100
    assert video.problem and "of the 4.0 s the file announces" in video.problem


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_display_rotation_is_applied_as_a_player_would(tmp_path, degrees):
    """A phone stores a portrait video as landscape frames plus a rotation: frames come
    upright, equal (up to the codec) to the clip they were made from."""
    with VideoFile(TALKING) as video:
        upright = [rgb for _, rgb in video.frames()][:10]
    stored = [np.ascontiguousarray(np.rot90(rgb, -degrees // 90)) for rgb in upright]
    path = tmp_path / f"rotated{degrees}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(degrees)
        for rgb in stored:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    with VideoFile(path) as video:
        shown = [rgb for _, rgb in video.frames()]
        assert (video.info.width, video.info.height) == (stored[0].shape[1], stored[0].shape[0])
    assert [rgb.shape for rgb in shown] == [(300, 400, 3)] * 10
    error = np.abs(np.stack(shown).astype(float) - np.stack(upright)).mean()
    assert error < 3.0, error


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 2400), (3718, 2230)), ((2400, 4000), (2230, 3718)), ((3840, 2160), (3840, 2160))],
    ids=["above-4k", "above-4k-portrait", "4k"],
)
def test_frames_above_4k_are_scaled_down_once_and_4k_is_untouched(tmp_path, size, expected):
    width, height = size
    ramp = np.linspace(0, 255, width, dtype=np.uint8)  # a picture with detail to keep
    image = np.repeat(np.broadcast_to(ramp, (height, width))[..., None], 3, axis=2)
    clip = write_clip(tmp_path / "big.mkv", [image] * 3, size, mjpeg=True)
    with warnings.catch_warnings(record=True) as warned, VideoFile(clip) as video:
        warnings.simplefilter("default")
        frames = [rgb for _, rgb in video.frames()]
    assert [f.shape for f in frames] == [(expected[1], expected[0], 3)] * 3
    assert expected[0] * expected[1] <= 3840 * 2160
    said = [str(w.message) for w in warned if issubclass(w.category, LipForensicsWarning)]
    middle_row = frames[0][expected[1] // 2, :, 0].astype(float)
    assert np.abs(middle_row - np.linspace(0, 255, expected[0])).max() < 4  # aspect kept
    if expected == size:
        assert not said
    else:
        assert said == [
            f"frames of {width}x{height} are above 4K (3840x2160 pixels): "
            f"scaled down to {expected[0]}x{expected[1]} before buffering"
        ]
