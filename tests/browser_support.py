"""Real browsers for the page tests: Debian's Chromium driven by Playwright (its own browser
download is never used), a fake camera fed from a clip, and ``serve``'s server with the demo
detector running in a thread of its own (Playwright's API here is synchronous).

Chromium's fake camera plays a 4:2:0 y4m file at the rate in its header, looping;
:func:`y4m` makes one from an mp4 with PyAV. Set ``LIPFORENSICS_SCREENSHOTS=DIR`` to keep
the tests' screenshots in DIR (``docs`` refreshes the README's).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from stream.detector import Detector
from stream.events import Event
from stream.server.app import Server
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings, WhipSettings
from tests.server_support import TOKEN
from training.demo_detector import WEIGHTS

#: Debian's Chromium: the binary itself first (the /usr/bin wrapper script warns on some hosts).
CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
#: flags of every browser; Playwright adds headless, no-sandbox and the quiet defaults itself.
FLAGS = ["--disable-gpu", "--allow-loopback-in-peer-connection"]
#: seconds the tests wait for something a page should show.
WAIT = 60.0


def chromium() -> str:
    """The Chromium executable, or skip (fail in CI) with how to install it."""
    found = None
    if importlib.util.find_spec("playwright") is not None:
        found = next((path for path in CHROMIUM if os.access(path, os.X_OK)), None)
    if found is None:
        reason = "Chromium and Playwright are needed (apt: chromium; pip: playwright)"
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def camera_flags(clip: Path) -> list[str]:
    """Flags that grant the camera and feed it from ``clip`` (a y4m file)."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip.resolve()}",
    ]


def y4m(video: Path, target: Path) -> Path:
    """``video`` as a 4:2:0 y4m file at its own frame rate (what the fake camera plays)."""
    with av.open(str(video)) as source, av.open(str(target), "w", format="yuv4mpegpipe") as out:
        stream = source.streams.video[0]
        raw = out.add_stream("wrapped_avframe", rate=stream.average_rate)
        context = stream.codec_context
        raw.width, raw.height, raw.pix_fmt = context.width, context.height, "yuv420p"
        for frame in source.decode(stream):
            frame = frame.reformat(format="yuv420p")
            frame.pts = None
            out.mux(raw.encode(frame))
        out.mux(raw.encode())
    return target


def screenshot(page, name: str, folder: Path) -> Path:
    """A full-page PNG of ``page`` in ``folder`` (or in $LIPFORENSICS_SCREENSHOTS)."""
    path = Path(os.environ.get("LIPFORENSICS_SCREENSHOTS") or folder) / name
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    """Poll ``condition`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.1)
    return found


class ServedInThread:
    """``serve`` as the command runs it (the demo detector, WHIP with loopback ICE), on
    127.0.0.1 in a thread of its own; every event it emits is recorded in :attr:`events`, in
    its JSON form (as the pages get it)."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="served", daemon=True)
        self._thread.start()
        if not self._ready.wait(120) or self._failure is not None:
            raise RuntimeError(f"the server did not start: {self._failure}")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by __init__
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        detector = Detector.load(WEIGHTS, backend="onnxruntime")
        self.pipeline = detector.pipeline(Settings.of(jsonl=None))
        settings = ServerSettings(token=TOKEN, port=0, whip=WhipSettings(ice_hosts=("127.0.0.1",)))
        self.server = Server(self.pipeline, settings)
        events = self.pipeline.subscribe()
        recording = asyncio.ensure_future(self._record(events))
        await self.server.start()
        self.url = self.server.url
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()
        await self.pipeline.stop(drain=False)
        await recording

    async def _record(self, events) -> None:
        async for event in events:
            self.events.append(event.to_dict())

    def emit(self, event: Event) -> None:
        """Send ``event`` through the pipeline, as a stream would."""
        self._loop.call_soon_threadsafe(self.pipeline.emit, event)

    def of(self, stream: str, kind: str) -> list[dict[str, object]]:
        """The events of ``kind`` (verdict, alert, status) of ``stream`` so far."""
        return [e for e in list(self.events) if e["stream"] == stream and e["type"] == kind]

    @property
    def sessions(self) -> int:
        """WHIP sessions open now."""
        return len(self.server.whip.sessions)

    def close(self) -> None:
        """Stop the server and the pipeline, and the thread."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self._loop.close()


def launch(driver, *flags: str):
    """Debian's Chromium, headless, with :data:`FLAGS` and ``flags``."""
    return driver.chromium.launch(executable_path=chromium(), args=[*FLAGS, *flags])


def demo_clip_y4m(name: str, folder: Path) -> Path:
    """The demo's ``name`` clip (genuine or manipulated, 8 s) as y4m in ``folder``; the whole
    clip, since the manipulated one reaches ALERT only after about 4 s."""
    from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED

    source = {"genuine": DEMO_GENUINE, "manipulated": DEMO_MANIPULATED}[name]
    return y4m(source, folder / f"{name}.y4m")
