"""`pip install .` (not editable) carries everything: the command, the demo detector and its
clips, the MediaPipe model and the page assets, usable from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the checkout holds beside the packages (environments, caches, builds, tests, media)
NOT_SHIPPED = (".*", "build", "dist", "*.egg-info", "__pycache__", "node_modules", "tests", "media")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from the checkout and installed without dependencies into
    a folder of its own (the dependencies come from the test's own environment)."""
    source = tmp_path_factory.mktemp("source") / "checkout"  # a build leaves no trace here
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    wheels = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("target")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("lipforensics_live-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def command(installed: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``lipforensics-live`` console script from ``cwd``, with the wheel's
    folder (not the checkout) on the import path."""
    env = {**os.environ, "PYTHONPATH": str(installed), "PYTHONSAFEPATH": "1"}
    script = installed / "bin" / "lipforensics-live"
    return subprocess.run(
        [sys.executable, str(script), *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_wheel_has_a_command_that_scans_with_its_bundled_demo(installed, tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    helped = command(installed, "--help", cwd=outside)
    assert helped.returncode == 0, helped.stderr
    assert "lipforensics-live" in helped.stdout and "scan" in helped.stdout

    demo = installed / "training" / "demo"
    scanned = command(
        installed,
        "scan",
        str(demo / "manipulated.mp4"),
        "--weights",
        str(demo / "demo_lipforensics.pth"),
        "--backend",
        "onnxruntime",
        "--json",
        cwd=outside,
    )
    assert scanned.returncode == 0, scanned.stderr
    report = json.loads(scanned.stdout)
    assert report["clips"] == 8 and report["thresholds"].startswith(str(demo))

    where = subprocess.run(
        [sys.executable, "-c", "import stream.faces.landmarks as m; print(m.MODEL_PATH)"],
        cwd=outside,
        env={**os.environ, "PYTHONPATH": str(installed), "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed)  # not the checkout's copy
    assert (installed / "stream" / "faces" / "assets" / "face_landmark_lite.tflite").is_file()
