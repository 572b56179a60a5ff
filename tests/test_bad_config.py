"""Bad sources and configuration through the real CLI (subprocesses): one clear line each and
a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commands.cli import main
from tests.live_support import TALKING, free_port

ROOT = Path(__file__).resolve().parents[1]


def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "run_stream.py", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "udp://127.0.0.1:5000"], "error: unsupported source 'udp://127.0.0.1:5000'"),
        (["run", str(TALKING), "--config", "{bad_toml}"], "error: invalid TOML in"),
        (["serve", "--config", "{bad_toml}"], "error: invalid TOML in"),
        (["run", str(TALKING), "--weights", "{missing}"], "error: weights file not found"),
        (
            ["serve", "--weights", "{missing}", "--token", "t", "--port", "0"],
            "error: weights file not found",
        ),
        (["run", "rtsp://admin:hunter2@[::1/cam"], "error: not a valid address: 'rtsp://***@[::1"),
        (["run", "rtsp://127.0.0.1:99999/cam"], "error: not a valid address"),
        (["serve", "--token", "t", "--port", "70000"], "error: port must be 0..65535, got 70000"),
        (["run", str(TALKING), "--webhook", "notaurl"], "error: webhook must be an http:// or"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(narrow_weights, tmp_path, arguments, message):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("stride = [\n")
    places = {"bad_toml": str(bad_toml), "missing": str(tmp_path / "missing.pth")}
    arguments = [argument.format(**places) for argument in arguments]
    if "--weights" not in arguments:
        arguments += ["--weights", str(narrow_weights)]
    done = cli(*arguments)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert "hunter2" not in done.stderr


def test_an_unreachable_camera_is_given_up_with_one_warning_and_exit_1(narrow_weights, tmp_path):
    """rtsp:// to a closed loopback port with --give-up-after: the source retries with
    backoff, then ends with an error status; run exits 1 with one warning that says why."""
    events = tmp_path / "events.jsonl"
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    done = cli(
        "run", url, "--weights", str(narrow_weights), "--backend", "torch",
        "--give-up-after", "2", "--jsonl", str(events),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "Traceback" not in done.stderr
    assert warnings[0].startswith("warning: 127.0.0.1/cam: gave up after ")
    assert "without a connection" in warnings[0]
    statuses = [e["status"] for line in events.read_text().splitlines() if (e := json.loads(line))]
    assert statuses[-2:] == ["error", "ended"] and "connected" not in statuses
    assert statuses.count("reconnecting") >= 1


def test_every_failed_camera_is_named_with_its_control_characters_escaped(narrow_weights, tmp_path):
    """Issue 24, rows 9 and 28: 70 unreachable cameras (more than the 64 ended streams a
    pipeline keeps) are each named at exit, and a camera named with an escape sequence and
    a newline is printed escaped (it forged a log line)."""
    port = free_port()
    evil = "cam\x1b[2J\nerror: forged"
    names = [evil, *(f"cam{number:02d}" for number in range(69))]
    lines = [f'{json.dumps(name)} = "rtsp://127.0.0.1:{port}/{n}"' for n, name in enumerate(names)]
    config = tmp_path / "cameras.toml"
    config.write_text("[cameras]\n" + "\n".join(lines) + "\n")
    done = cli(
        "run", "--config", str(config), "--weights", str(narrow_weights), "--backend", "torch",
        "--give-up-after", "0.5", "--jsonl", str(tmp_path / "events.jsonl"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stderr and "Traceback" not in done.stderr
    assert not any(line.startswith("error: forged") for line in done.stderr.splitlines())
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    failed = [line.split(":")[1].strip() for line in warned]
    assert sorted(failed) == sorted([*names[1:], "cam\\x1b[2J\\nerror"]), done.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("weights = 5\n", "error: setting weights must be a path (string), got 5"),
        (
            "frame_queue_mb = nan\n",
            "error: setting frame_queue_mb must be a finite number, got nan",
        ),
        ("[pipline]\nstride = 5\n", "error: unknown table(s) [pipline] in"),
        ("x = " + "[" * 5000 + "]" * 5000, "error: invalid TOML in {config}: nested too deeply"),
        ("inference_threads = 100000\n", "error: inference_threads must be 1..256, got 100000"),
        ("[faces]\nwindow = 100000\n", "error: window must be 5..25, got 100000"),
        ("\ufeffstride = 0\n", "error: stride must be 1..25, got 0"),  # the BOM is skipped
    ],
)
def test_a_config_value_of_the_wrong_kind_is_one_line_naming_the_key(tmp_path, toml, message):
    config = tmp_path / "settings.toml"
    config.write_text(toml, encoding="utf-8")
    done = cli("run", str(TALKING), "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message.format(config=config)), done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("flags", "toml", "message"),
    [
        (["--max-sessions", "-3"], "", "max_sessions must be 1..1000, got -3"),
        (["--max-sessions", "0"], "", "max_sessions must be 1..1000, got 0"),
        ([], "[server]\nmax_body = -1\n", "max_body must be 1..16777216, got -1"),
        ([], "[server]\nconnect_timeout = 0\n", "connect_timeout must be a positive number"),
        ([], "[server]\nconnect_timeout = nan\n", "connect_timeout must be a finite number"),
        ([], "[server]\nmax_connections = 0\n", "max_connections must be 1..65536, got 0"),
        ([], "[server]\nidle_timeout = -1\n", "idle_timeout must be a positive number"),
        (["--stun", "http://x"], "", "STUN server 'http://x' is not stun:HOST[:PORT]"),
        (["--ice-host", "not-an-ip"], "", "ICE host 'not-an-ip' is not an IP address"),
        (["--cors-origin", "*"], "", "CORS origin '*' is not an exact origin"),
    ],
)
def test_impossible_server_settings_are_refused_at_start_up(
    narrow_weights, tmp_path, capsys, flags, toml, message
):
    """In-process through the real CLI: these are refused before anything starts."""
    config = tmp_path / "server.toml"
    config.write_text(toml)
    status = main(["serve", "--weights", str(narrow_weights), "--token", "t" * 20,
                   "--port", "0", "--config", str(config), *flags])  # fmt: skip
    stderr = capsys.readouterr().err
    assert status == 2 and message in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: ")


def test_small_input_mistakes_are_named(narrow_weights, tmp_path, capsys):
    """In-process through the real CLI."""
    with pytest.raises(SystemExit) as parsed:
        main(["run", str(TALKING), "--weights", str(narrow_weights), "--stride", "1.5"])
    assert parsed.value.code == 2
    assert "argument --stride: expected a whole number, got '1.5'" in capsys.readouterr().err
    assert main(["scan", str(TALKING), "--weights", str(narrow_weights), "--stride", "100"]) == 2
    assert capsys.readouterr().err == (
        "error: --stride must be 1..25 (a longer one leaves frames unscored), got 100\n"
    )
    assert main(["crops", str(TALKING), "--out", str(tmp_path / "noext")]) == 2
    assert "--out must end in .npy" in capsys.readouterr().err
    assert not (tmp_path / "noext").exists()


def test_a_still_image_runs_but_says_it_gave_no_verdict(narrow_weights, tmp_path, capsys):
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    status = main(["run", str(image), "--weights", str(narrow_weights), "--backend", "torch",
                   "--jsonl", str(tmp_path / "events.jsonl")])  # fmt: skip
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert status == 0 and warnings == [
        "warning: img: no verdict (1 frame(s) at 25 fps); a verdict needs 25 consecutive "
        "frames with a face"
    ]


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_config_that_never_ends_is_refused_at_one_mebibyte(narrow_weights, capsys, command):
    """``--config /dev/zero`` once read for ever, 65 MB/s, deaf to SIGTERM."""
    where = [str(TALKING)] if command == "run" else ["--token", "t" * 20]
    status = main([command, *where, "--weights", str(narrow_weights), "--config", "/dev/zero"])
    assert status == 2
    assert capsys.readouterr().err == "error: config file /dev/zero is larger than 1 MiB\n"


@pytest.mark.parametrize("rate", ["nan", "inf", "0"])
def test_calibrate_refuses_a_false_alert_target_that_is_not_a_positive_number(
    tmp_path, capsys, rate
):
    """NaN was saved as non-standard JSON; inf put the alert threshold at -2.44."""
    weights = tmp_path / "w.pth"  # never read: the target is refused first
    argv = ["calibrate", "--weights", str(weights), "--genuine", str(TALKING)]
    assert main([*argv, "--target-false-alerts-per-hour", rate]) == 2
    assert capsys.readouterr().err == (
        f"error: --target-false-alerts-per-hour must be a positive finite number, got {rate}\n"
    )
    assert not list(tmp_path.iterdir())


def test_calibrate_checks_that_its_thresholds_can_be_written_before_scoring(
    tmp_path, narrow_weights, capsys
):
    """Issue 24, row 14: weights in a read-only folder were scored through, then a
    PermissionError traceback. A path that cannot be written (here a folder where the
    thresholds file goes; a read-only folder unless we are root) is one line first: the
    genuine "video" (a text file) is never read."""
    from engines.weights import thresholds_path_for

    weights = Path(shutil.copy(narrow_weights, tmp_path / "w.pth"))
    not_a_video = tmp_path / "genuine.mp4"
    not_a_video.write_text("not a video")
    thresholds_path_for(weights).mkdir()
    argv = ["calibrate", "--weights", str(weights), "--genuine", str(not_a_video)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: cannot write the thresholds file {thresholds_path_for(weights)}: it is a folder\n"
    )
    if os.geteuid() != 0:  # root writes anywhere
        thresholds_path_for(weights).rmdir()
        tmp_path.chmod(0o555)
        try:
            assert main(argv) == 2
        finally:
            tmp_path.chmod(0o755)
        assert "Permission denied" in capsys.readouterr().err
