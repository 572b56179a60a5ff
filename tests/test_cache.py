"""The export cache when its folder cannot be used, a write into it fails, or an entry in it
is corrupt: one line, a temporary folder or a rebuild, never a traceback or a leftover."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import onnxruntime as ort
import pytest

from engines import export
from errors import LipForensicsWarning
from tests.live_support import TALKING, narrow_model

ROOT = Path(__file__).resolve().parent.parent


def cli(*arguments: str, env: dict[str, str], file_size_limit: int | None = None):
    """``run_stream.py`` with ``env`` (and a file-size limit, SIGXFSZ ignored, so that a
    write past it fails with ``File too large`` rather than killing the process)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, "run_stream.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if file_size_limit is not None else None,
    )


def scan_with(weights: Path, env: dict[str, str], **limits: int):
    return cli(
        "scan", str(TALKING), "--weights", str(weights), "--backend", "onnxruntime",
        env=env, **limits,
    )  # fmt: skip


def run_with(weights: Path, env: dict[str, str]):
    return cli(
        "run", str(TALKING), "--weights", str(weights), "--backend", "onnxruntime",
        "--stride", "25", env=env,
    )  # fmt: skip


@pytest.mark.parametrize("command", [scan_with, run_with], ids=["scan", "run"])
@pytest.mark.parametrize("broken", ["cache-is-a-file", "home-is-a-file"])
def test_an_unusable_cache_folder_gives_way_to_a_temporary_one_with_one_warning(
    tmp_path, narrow_weights, command, broken
):
    a_file = tmp_path / "hostname"
    a_file.write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items() if k != "LIPFORENSICS_CACHE"}
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    if broken == "cache-is-a-file":
        env["LIPFORENSICS_CACHE"] = str(a_file)
    else:
        env["HOME"] = str(a_file)
    done = command(narrow_weights, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if "cache" in line]
    assert warning.startswith(f"warning: cannot use the cache folder {a_file}")
    assert "a file, not a folder" in warning or "Not a directory" in warning
    assert '"type":"verdict"' in done.stdout or "video logit" in done.stdout
    assert not list((tmp_path / "tmp").glob("lipforensics-cache-*"))  # removed at exit


def test_a_cache_write_past_the_file_size_limit_is_one_line_and_leaves_no_partial(
    tmp_path, narrow_weights
):
    cache = tmp_path / "cache"
    env = {**os.environ, "LIPFORENSICS_CACHE": str(cache)}
    done = scan_with(narrow_weights, env, file_size_limit=20_000)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: cannot write ") and line.endswith(
        "File too large (free space, or set LIPFORENSICS_CACHE elsewhere)"
    )
    assert not [p for p in cache.rglob("*") if ".partial" in p.name]


def test_a_corrupt_cached_export_is_rebuilt_with_a_warning(tmp_path):
    model = narrow_model()
    first = export.cached_export(model, tmp_path, source_sha256="0" * 64)
    whole = first.encoder.read_bytes()
    first.encoder.write_bytes(whole[: len(whole) // 2])  # cut short on disk
    first.head.write_bytes(b"\0" * 100)  # overwritten
    with pytest.warns(LipForensicsWarning, match="is corrupt; building it again") as warned:
        again = export.cached_export(model, tmp_path, source_sha256="0" * 64)
    assert len(warned) == 2 and again.encoder == first.encoder
    assert again.encoder.read_bytes() == whole
    ort.InferenceSession(str(again.head), providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():  # whole again: taken as it is, without a word
        warnings.simplefilter("error", LipForensicsWarning)
        export.cached_export(model, tmp_path, source_sha256="0" * 64)
