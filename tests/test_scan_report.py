"""`scan --report`: one self-contained HTML file, rendered in Debian's Chromium; and the
progress bars, which only a terminal gets."""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser_support import launch, playwright_driver, screenshot  # noqa: F401
from PIL import Image

from commands.progress import ProgressBar
from training.demo_detector import DEMO_MANIPULATED, DISCLAIMER, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """``scan --json --report`` of the demo's manipulated clip, its stderr a terminal."""
    report = tmp_path_factory.mktemp("report") / "report.html"
    command = [sys.executable, "run_stream.py", "scan", str(DEMO_MANIPULATED), "--weights",
               str(WEIGHTS), "--backend", "onnxruntime", "--json", "--report", str(report)]  # fmt: skip
    terminal, stderr = os.openpty()
    try:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                              timeout=240, check=False)  # fmt: skip
        os.close(stderr)
        printed = b""
        while chunk := _read(terminal):
            printed += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0, printed.decode(errors="replace")
    return json.loads(done.stdout), report, printed.decode(errors="replace")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the other end is closed and drained
        return b""


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
    playwright_driver,  # noqa: F811
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
    terminal, screen = os.openpty()
    try:
        with open(screen, "w", closefd=False) as stderr:
            monkeypatch.setattr(sys, "stderr", stderr)
            for enabled in (True, False):
                with ProgressBar("scan", enabled=enabled) as bar:
                    for done in range(1, 51):
                        bar(done, 50)
                stderr.flush()
        drawn = _read(terminal).decode()
    finally:
        os.close(terminal)
        os.close(screen)
    assert "scan" in drawn and "50/50" in drawn and drawn.count("50/50") == 1
    piped = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(sys, "stderr", piped)
    with ProgressBar("scan") as bar:
        bar(1, 2)
    assert piped.getvalue() == ""
