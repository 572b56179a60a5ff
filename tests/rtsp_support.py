"""The test RTSP server (``tests/rtsp_server.py``) as a child process of the system Python.

Debian's GStreamer bindings live in the system Python, not in the project's virtual
environment, so the server runs as ``/usr/bin/python3 tests/rtsp_server.py``. `.ci/run`
installs what it needs; elsewhere the RTSP tests are skipped with the reason, unless
``LIPFORENSICS_CI`` is set (then a missing server is a failure).
"""

from __future__ import annotations

import os
import select
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
#: seconds the server may take to say it is ready.
START_TIMEOUT = 20.0


def require_rtsp_server() -> None:
    """Skip the calling test when the system Python cannot run the server (fail in CI)."""
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        found = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0
    except OSError:
        found = False
    if not found:
        reason = f"{SYSTEM_PYTHON} lacks gst-rtsp-server (apt: gir1.2-gst-rtsp-server-1.0)"
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class RtspServer:
    """Clips served on 127.0.0.1; :meth:`start` again after :meth:`kill` reuses the port.

    Args:
        clips: MP4 files with H.264 video, played one after the other.
        loop: repeat them forever.
        stall_after: stop sending after this many seconds, keeping the connection open.
        corrupt: flip bytes in every ``corrupt``-th non-key frame (0: never).
    """

    def __init__(
        self, *clips: Path, loop: bool = True, stall_after: float = 0.0, corrupt: int = 0
    ) -> None:
        self.clips, self.loop = clips, loop
        self.stall_after, self.corrupt = stall_after, corrupt
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the server; return its ``rtsp://`` URL once it listens."""
        command = [SYSTEM_PYTHON, str(SCRIPT), *map(str, self.clips), "--port", str(self.port)]
        if self.loop:
            command.append("--loop")
        if self.stall_after:
            command += ["--stall-after", str(self.stall_after)]
        if self.corrupt:
            command += ["--corrupt", str(self.corrupt)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("ready "):
            self.kill()
            raise RuntimeError(f"the RTSP server did not start (said {line!r})")
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        return self.url

    @property
    def pid(self) -> int:
        """The server's process id (to SIGSTOP it, say); it must be running."""
        if self._process is None:
            raise RuntimeError("the RTSP server is not running")
        return self._process.pid

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), like a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process.stdout.close()
            self._process = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
