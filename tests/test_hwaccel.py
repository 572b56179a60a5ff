"""The ``hwaccel`` setting: a device FFmpeg does not know is refused in one line; one it
knows either decodes (on the device, or in software when the device cannot take the
stream) or fails the source in one line, never with a traceback."""

from __future__ import annotations

import pytest
from live_support import TALKING

from commands.cli import main
from errors import LipForensicsError, MediaError
from stream.settings.pipeline import Settings
from stream.sources.hwaccel import available_hwaccels
from stream.sources.video_file import VideoFile

KNOWN = available_hwaccels()


def test_an_unknown_device_is_refused_by_the_settings():
    with pytest.raises(LipForensicsError, match="unknown hwaccel 'no-such-device'"):
        Settings.of(hwaccel="no-such-device")
    assert Settings().sources.hwaccel is None


def test_run_refuses_an_unknown_device_in_one_line(capsys):
    assert main(["run", str(TALKING), "--weights", "x.pth", "--hwaccel", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown hwaccel 'nope'") and "\n" not in err


@pytest.mark.skipif(not KNOWN, reason="this PyAV has no hardware decoders")
@pytest.mark.parametrize("device", KNOWN)
def test_a_known_device_decodes_or_fails_in_one_line(device):
    assert Settings.of(hwaccel=device).sources.hwaccel == device
    try:
        with VideoFile(TALKING, hwaccel=device) as video:
            frames = list(video.frames())
    except MediaError as error:  # no such device here (a CPU machine): said in one line
        assert "\n" not in str(error) and f"hardware decoding on {device!r}" in str(error)
    else:
        assert len(frames) == 100 and frames[0][1].shape == (300, 400, 3)
