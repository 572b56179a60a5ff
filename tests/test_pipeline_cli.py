"""`run_stream.py run`: end to end with ONNX Runtime, and one clear line for bad input."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from commands import cli as run_stream
from errors import LipForensicsError
from stream.settings.pipeline import load_settings
from tests.live_support import (
    TALKING,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The environment for CLI runs: one export cache, so the network is exported once."""
    return {**os.environ, "LIPFORENSICS_CACHE": str(tmp_path_factory.mktemp("cache"))}


def test_run_scores_two_streams_with_onnxruntime(narrow_weights, env, tmp_path):
    """Two sources at once (30 fps, and two faces side by side) through the real CLI."""
    out = tmp_path / "events.jsonl"
    command = [sys.executable, "run_stream.py", "run", str(DATA / "talking_30fps.mp4")]
    command += [str(DATA / "two_faces.mp4"), "--weights", str(narrow_weights), "--stride", "25"]
    command += ["--backend", "onnxruntime", "--jsonl", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    verdicts = [e for e in events if e["type"] == "verdict"]
    assert [v["pts"] for v in verdicts if v["stream"] == "talking_30fps"] == [
        [0.0, 1.0],
        [1.0, 2.0],
        [2.0, 3.0],
    ]
    pair = [(v["face"], v["pts"]) for v in verdicts if v["stream"] == "two_faces"]
    assert sorted(pair) == [(0, [0.0, 1.0]), (0, [1.0, 2.0]), (1, [0.0, 1.0]), (1, [1.0, 2.0])]
    ended = [e["stream"] for e in events if e["type"] == "status" and e["status"] == "ended"]
    assert sorted(ended) == ["talking_30fps", "two_faces"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["udp://10.0.0.1:5000"], "unsupported source 'udp://10.0.0.1:5000'"),
        (["missing.mp4"], "video file not found: missing.mp4"),
        ([str(DATA / "README.md")], "cannot read"),
    ],
)
def test_a_bad_source_is_one_line_and_exit_2(narrow_weights, capsys, arguments, message):
    code = run_stream.main(["run", *arguments, "--weights", str(narrow_weights)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_rtsp_addresses_go_to_the_rtsp_source_and_files_to_the_file_source():
    from stream.sources.files import FileSource
    from stream.sources.open import open_source
    from stream.sources.rtsp import RtspSource

    camera = open_source("rtsp://127.0.0.1:8554/cam", "door")
    assert isinstance(camera, RtspSource) and camera.stream_id == "door" and camera.live
    clip = open_source(f"file://{TALKING}", realtime=True)
    assert isinstance(clip, FileSource) and clip.stream_id == "talking" and clip.live
    asyncio.run(clip.close())


def test_missing_weights_are_one_line_and_exit_2(capsys, tmp_path):
    talking = str(TALKING)
    assert run_stream.main(["run", talking]) == 2
    assert "--weights is required" in capsys.readouterr().err
    assert run_stream.main(["run", talking, "--weights", str(tmp_path / "none.pth")]) == 2
    assert "weights file not found" in capsys.readouterr().err


def test_settings_come_from_toml_then_flags(tmp_path):
    config = tmp_path / "live.toml"
    config.write_text('stride = 10\n[pipeline]\nbackend = "torch"\n[server]\nmax_sessions = 2\n')
    settings = load_settings(config, stride=None, jsonl="out.jsonl")
    assert (settings.faces.stride, settings.engine.backend) == (10, "torch")
    assert settings.alerts.jsonl == "out.jsonl"
    assert load_settings(config, stride=25).faces.stride == 25


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stride = [", "invalid TOML"),
        ("strides = 5", "unknown setting(s)"),
        ('stride = "five"', "setting stride must be a whole number"),
        ("stride = 26", "stride must be 1..25"),
    ],
)
def test_a_bad_config_is_one_clear_error(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(LipForensicsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(config)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_stops_the_input_flushes_the_events_and_exits_0(narrow_weights, env, stop):
    """A camera-paced run stopped after its first verdict (SIGTERM, or SIGHUP: the terminal
    went away): the source reports "ended", the windows in hand are scored, and the process
    exits 0."""
    clip = ROOT / "media" / "cap13_edit2.mp4"  # 30 s: still playing when the signal comes
    command = [sys.executable, "run_stream.py", "run", str(clip), "--realtime"]
    command += ["--weights", str(narrow_weights), "--backend", "onnxruntime", "--stride", "5"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(json.loads(line))
        if lines[-1]["type"] == "verdict":
            process.send_signal(stop)
            break
    lines += [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=60) == 0
    assert [e["status"] for e in lines if e["type"] == "status"] == ["connected", "ended"]
    last_verdict = max(v["pts"][1] for v in lines if v["type"] == "verdict")
    assert last_verdict < 20.0  # stopped long before the end of the clip
