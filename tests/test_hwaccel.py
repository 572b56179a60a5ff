"""The ``hwaccel`` setting: a device FFmpeg does not know is refused in one line; one it
knows either decodes (on the device, or in software when the device cannot take the
stream) or fails the source in one line, never with a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from commands.cli import main
from errors import LipForensicsError, MediaError
from stream.settings.pipeline import Settings
from stream.sources.hwaccel import available_hwaccels
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING

KNOWN = available_hwaccels()


def test_an_unknown_device_is_refused_by_the_settings():
    with pytest.raises(LipForensicsError, match="unknown hwaccel 'no-such-device'"):
        Settings.of(hwaccel="no-such-device")
    assert Settings().sources.hwaccel is None


def test_run_refuses_an_unknown_device_in_one_line(capsys):
    assert main(["run", str(TALKING), "--weights", "x.pth", "--hwaccel", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown hwaccel 'nope'") and "\n" not in err


def device_present(device: str) -> bool | None:
    """Whether this machine has the hardware behind ``device``, where the test can tell
    without FFmpeg (an NVIDIA driver's control node for ``cuda``); None: it cannot."""
    return Path("/dev/nvidiactl").exists() if device == "cuda" else None


@pytest.fixture(scope="module")
def software_frames() -> list:
    with VideoFile(TALKING) as video:
        return list(video.frames())


@pytest.mark.skipif(not KNOWN, reason="this PyAV has no hardware decoders")
@pytest.mark.parametrize("device", KNOWN)
def test_a_known_device_decodes_the_software_frames_or_fails_in_one_line(device, software_frames):
    """Where the device is known to be there it must decode, where it is known to be
    missing it must fail; either way what decodes equals the software decoder's frames
    (the device's, or the software fallback's) and what fails says so in one line."""
    present = device_present(device)
    assert Settings.of(hwaccel=device).sources.hwaccel == device
    try:
        with VideoFile(TALKING, hwaccel=device) as video:
            frames = list(video.frames())
    except MediaError as error:
        assert present is not True, f"{device} is present here, yet: {error}"
        assert "\n" not in str(error) and f"hardware decoding on {device!r}" in str(error)
        return
    assert present is not False, f"{device} decoded here without its hardware"
    assert [pts for pts, _ in frames] == [pts for pts, _ in software_frames]
    difference = [
        np.abs(rgb.astype(np.int16) - expected.astype(np.int16)).mean()
        for (_, rgb), (_, expected) in zip(frames, software_frames, strict=True)
    ]
    assert max(difference) < 2.0  # gray levels: a device's rounding, not another picture
