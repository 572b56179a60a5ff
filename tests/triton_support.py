"""A real Triton Inference Server on 127.0.0.1 for the Triton tests.

``make test`` builds it (``tests/triton_server/setup_server.sh``): the ``tritonserver`` bundled in
the nvidia-pytriton wheel, in ``.venv-triton`` (Debian's Python, numpy<2), which has only
the python backend. :func:`python_repository` therefore serves a repository written by
``export-triton`` as it is, except ``platform`` -> ``backend: "python"`` (and no GPU
``optimization``), with ``tests/triton_server/model.py`` in each version folder running that
folder's own ``model.onnx`` with ONNX Runtime. Without the server venv the tests are skipped
with the reason, unless ``LIPFORENSICS_CI`` is set (then they fail).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.live_support import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-triton"
MODEL_PY = Path(__file__).with_name("triton_server") / "model.py"
#: seconds the server may take to load the models and say it is ready.
START_TIMEOUT = 60.0


def require_triton_server() -> None:
    """Skip the calling test when the server venv is missing (fail in CI)."""
    if not (VENV / ".installed").exists():
        reason = (
            f"no Triton server in {VENV} (make test builds it: tests/triton_server/setup_server.sh)"
        )
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def python_repository(exported: Path, out: Path) -> Path:
    """A copy of the ``export-triton`` repository ``exported`` that the python backend
    serves (see the module doc); returns ``out``."""
    shutil.copytree(exported, out)
    for config in out.glob("*/config.pbtxt"):
        text = config.read_text()
        text = text.replace('platform: "onnxruntime_onnx"', 'backend: "python"')
        text = re.sub(r"\noptimization \{.*\n\} \}\n", "\n", text, flags=re.S)
        config.write_text(text)
        shutil.copy(MODEL_PY, config.parent / "1" / "model.py")
    return out


class TritonServer:
    """``tritonserver`` serving ``repository`` on free loopback ports; :meth:`start` again
    after :meth:`kill` reuses the ports (a restarted server at the same address)."""

    def __init__(self, repository: Path, log: Path) -> None:
        self.repository, self.log = repository, log
        self.grpc_port, self.http_port = free_port(), free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The gRPC address nodes use (``--triton-url``)."""
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> str:
        """Start the server and wait until both models are ready; return :attr:`url`."""
        server = VENV / "tritonserver"
        environment = dict(
            os.environ,
            VIRTUAL_ENV=str(VENV),
            PATH=f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
            LD_LIBRARY_PATH=f"{server.resolve().parent.parent / 'nvidia_pytriton.libs'}",
        )
        command = [
            str(server / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={VENV / 'backends'}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--allow-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--log-verbose=0",
        ]
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"tritonserver exited: {self.log.read_text()[-2000:]}")
            if self.ready():
                return self.url
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"tritonserver not ready after {START_TIMEOUT:g} s")

    def ready(self) -> bool:
        """True once every model is loaded (HTTP ``/v2/health/ready``)."""
        url = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and its python-backend stubs (its process group)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None
