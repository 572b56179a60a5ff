"""`scan --report`: one self-contained HTML file, rendered in Debian's Chromium; and the
progress bars, which only a terminal gets."""

from __future__ import annotations

import fcntl
import html
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commands.progress import ProgressBar
from tests.browser_support import launch, screenshot
from tests.live_support import TALKING
from training.demo_detector import DISCLAIMER, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """``scan --json --report`` of the talking clip (4 s) with the demo detector, its stderr
    a terminal."""
    report = tmp_path_factory.mktemp("report") / "report.html"
    command = [sys.executable, "run_stream.py", "scan", str(TALKING), "--weights", str(WEIGHTS),
               "--backend", "onnxruntime", "--json", "--report", str(report)]  # fmt: skip
    terminal, stderr = open_terminal()
    try:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                              timeout=240, check=False)  # fmt: skip
        printed = drain(terminal)
    finally:
        os.close(terminal)
        os.close(stderr)
    assert done.returncode == 0, printed
    return json.loads(done.stdout), report, printed


def open_terminal() -> tuple[int, int]:
    """A pseudo-terminal of 24 x 80 (a fresh one has no size, and bars no room): its two
    sides."""
    terminal, screen = os.openpty()
    fcntl.ioctl(screen, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return terminal, screen


def drain(terminal: int) -> str:
    """What was written to the terminal so far (its other side still open)."""
    os.set_blocking(terminal, False)
    printed = b""
    try:
        while chunk := os.read(terminal, 65536):
            printed += chunk
    except BlockingIOError:
        pass
    return printed.decode(errors="replace")


def test_the_report_is_one_file_that_requests_nothing(scanned):
    result, report, stderr = scanned
    page = report.read_text()
    assert not re.search(r"https?://", page)  # no request to anywhere
    assert not re.search(r"<(script|link|iframe)\b", page)
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    assert html.escape(DISCLAIMER) in page  # the demo weights were used
    assert f"<b>{result['level']}</b>" in page and f"{result['fake_probability']:.3f}" in page
    assert result["weights"] in page and "onnxruntime" in page
    assert "%|" not in stderr and "frame/s" not in stderr  # --json: no bar, even at a terminal


def test_chromium_renders_the_report_with_one_timeline_point_per_clip(
    scanned,
    playwright_driver,
    tmp_path,
):
    result, report, _ = scanned
    browser = launch(playwright_driver)
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(report.as_uri())
        assert page.locator("circle.clip").count() == result["clips"] > 1
        strip = page.evaluate(
            "() => { const i = document.querySelector('img.strip');"
            " return [i.complete, i.naturalWidth, i.naturalHeight]; }"
        )
        assert strip == [True, 25 * 96, 96]
        frames = page.locator(".frames img")
        assert frames.count() == 3
        shot = screenshot(page, "report.png", tmp_path)
    finally:
        browser.close()
    assert {url.split(":")[0] for url in requested} <= {"file", "data"}
    assert np.asarray(Image.open(shot).convert("L")).std() > 20  # not blank


def test_progress_bars_draw_only_on_a_terminal_and_only_when_enabled(monkeypatch):
    terminal, screen = open_terminal()
    try:
        with open(screen, "w", closefd=False) as stderr:
            monkeypatch.setattr(sys, "stderr", stderr)
            for enabled in (True, False):
                with ProgressBar("scan", enabled=enabled) as bar:
                    for done in range(1, 51):
                        bar(done, 50)
                stderr.flush()
        drawn = drain(terminal)
    finally:
        os.close(terminal)
        os.close(screen)
    assert "/50 [" in drawn and "frame/s" in drawn and drawn.count("scan:") == 1  # once
    piped = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(sys, "stderr", piped)
    with ProgressBar("scan") as bar:
        bar(1, 2)
    assert piped.getvalue() == ""


@pytest.mark.parametrize("where", ["folder", "/proc/report.html", "missing/report.html"])
def test_a_report_that_cannot_be_written_is_refused_before_the_weights_load(
    tmp_path, capsys, where
):
    """Issue 24, row 13: an unwritable --report was found only after the whole scan. Given
    weights that do not exist, the report's error comes first: nothing was loaded."""
    from commands.cli import main

    report = tmp_path if where == "folder" else Path(where)
    report = tmp_path / where if where.startswith("missing") else report
    arguments = ["scan", str(TALKING), "--weights", str(tmp_path / "none.pth")]
    assert main([*arguments, "--report", str(report)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: cannot write --report {report}: ")
    assert err.count("\n") == 1 and not (tmp_path / "missing").exists()


def test_the_verdict_is_printed_when_the_report_fails_to_write():
    """Issue 24, row 13: ``--report /dev/full`` ended with exit 2 and no verdict."""
    command = [sys.executable, "run_stream.py", "scan", str(TALKING), "--weights", str(WEIGHTS),
               "--backend", "onnxruntime", "--report", "/dev/full"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2
    assert "video logit" in done.stdout and "highest level" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "No space left on device" in errors[0], done.stderr
