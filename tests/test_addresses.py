"""Addresses as users type them: passwords never shown whatever the address's shape, and
``file://`` URLs percent-decoded like any file URL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream.sources.files import FileSource
from stream.sources.open import open_source
from stream.sources.rtsp import RtspSource
from stream.sources.urls import redact
from tests.live_support import TALKING

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("http://admin:hunter2@127.0.0.1/x", "http://***@127.0.0.1/x"),
        ("rtsp:/admin:hunter2@127.0.0.1/x", "rtsp:/***@127.0.0.1/x"),
        ("admin:hunter2@127.0.0.1/x", "admin:***@127.0.0.1/x"),
        ("user:hunter2@host/hook", "user:***@host/hook"),
        ("rtsp://admin:hun/ter2@cam/x", "rtsp://***@cam/x"),
        ("rtsp://admin:hunter2@[::1/cam", "rtsp://***@[::1/cam"),
        ("rtsp://u:p@cam:554/live", "rtsp://***@cam:554/live"),
        ("rtsp://cam:554/live", "rtsp://cam:554/live"),
    ],
)
def test_redact_masks_a_password_whatever_the_shape_of_the_address(address, shown) -> None:
    assert redact(address) == shown


@pytest.mark.parametrize(
    "arguments",
    [
        ["run", "http://admin:hunter2@127.0.0.1/x"],
        ["run", "rtsp:/admin:hunter2@127.0.0.1/x"],
        ["run", "admin:hunter2@127.0.0.1/x"],
        ["run", str(TALKING), "--webhook", "user:hunter2@host/hook"],
        # issue 24, row 6: a Triton address showed its password twice
        ["run", str(TALKING), "--backend", "triton", "--triton-url", "grpc://u:hunter2@[::1]:1"],
        ["scan", str(TALKING), "--backend", "triton", "--triton-url", "u:hunter2@127.0.0.1:1"],
        ["scan", str(TALKING), "--backend", "triton", "--triton-url", "grpcx://u:hunter2@h:1"],
    ],
)
def test_no_error_line_shows_a_password(narrow_weights, arguments) -> None:
    command = [sys.executable, "run_stream.py", *arguments, "--weights", str(narrow_weights)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "hunter2" not in done.stderr and "***@" in done.stderr


def test_a_file_url_is_percent_decoded(tmp_path) -> None:
    folder = tmp_path / "dir with space"
    folder.mkdir()
    clip = shutil.copy(TALKING, folder / "clip 1.mp4")
    source = open_source(f"file://{str(folder).replace(' ', '%20')}/clip%201.mp4")
    assert isinstance(source, FileSource) and source.path == Path(clip)


def test_an_upper_case_rtsp_scheme_is_handed_to_ffmpeg_in_lower_case() -> None:
    source = open_source("RTSP://cam.local:554/live")
    assert isinstance(source, RtspSource) and source.url == "rtsp://cam.local:554/live"
