"""What a shared Chromium tab delivers to ``serve``, and what the detector makes of it.

A page titled "the call" plays one of the demo's clips in a loop; a second page, in front,
opens ``/publish`` with ``source=screen`` and shares the call's tab (Chromium picks it by
title), so the call's tab is behind, as a person's would be. For each case the table gives
what the browser's encoder sent (codec, frame size, frame rate, bit rate over the run, what
limited it) and the verdicts ``serve`` gave with the demo detector (median and highest
window logit, alerts), beside the same clip scored from its file.

Cases: the page's layout (``fit``: the whole video in the window; ``cut``: the video as
wide as a 1280x720 window, so its lower quarter is off screen, chin included) and the
track's content hint (``detail``, a captured surface's default, or ``motion``, which
``/publish`` sets).

Run (Debian's Chromium and Playwright, as the page tests): ``python -m bench.shared_tab
[--seconds 30] [--clip manipulated|genuine]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from stream.detector import Detector
from stream.pipeline import sinks_for
from stream.server.app import Server
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings, WhipSettings
from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-shared-tab-token"
CHROMIUM = "/usr/lib/chromium/chromium"
FLAGS = (
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    "--auto-select-tab-capture-source-by-title=the call",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--disable-background-timer-throttling",
)
LAYOUTS = {
    "fit": "width:100vw;height:100vh;object-fit:contain;display:block",
    "cut": "width:100%",
}
#: the encoder's view of the shared track, read from the publishing page once a second.
SENDER_STATS = """async () => {
  if (!publishing || !publishing.pc) return null;
  const stats = await publishing.pc.getStats();
  for (const r of stats.values()) {
    if (r.type === "outbound-rtp" && r.kind === "video" && r.frameWidth) {
      const codec = stats.get(r.codecId);
      return {codec: codec ? codec.mimeType : "?", width: r.frameWidth, height: r.frameHeight,
              fps: r.framesPerSecond || 0, bytes: r.bytesSent, limit: r.qualityLimitationReason,
              hint: publishing.pc.getSenders()[0].track.contentHint};
    }
  }
  return null;
}"""


@dataclass
class Case:
    """One run's measurements."""

    layout: str
    hint: str
    codec: str = "?"
    sizes: str = ""
    fps: str = ""
    kbps: str = ""
    limits: str = ""
    logits: tuple[float, ...] = ()
    alerts: int = 0


class ServeThread:
    """``serve`` with the demo detector on 127.0.0.1 in a thread; events to a JSON-lines file."""

    def __init__(self, events: Path) -> None:
        self.events = events
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("serve did not start")

    async def _serve(self) -> None:
        detector = Detector.load(WEIGHTS, backend="onnxruntime")
        settings = Settings.of(weights=WEIGHTS, jsonl=str(self.events))
        pipeline = detector.pipeline(settings, sinks_for(settings.alerts, settings.fleet.node))
        whip = WhipSettings(ice_hosts=("127.0.0.1",))
        server = Server(pipeline, ServerSettings(token=TOKEN, port=0, whip=whip))
        await server.start()
        self.url = server.url
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await server.stop()
        await pipeline.stop(drain=True)

    def close(self) -> None:
        """Stop the server, drain the pipeline."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(120)


def run_case(driver, folder: Path, clip: Path, layout: str, hint: str, seconds: float) -> Case:
    """Share the call's tab for ``seconds`` and measure (see the module doc)."""
    (folder / "call.mp4").write_bytes(clip.read_bytes())
    video = f"<video src='call.mp4' autoplay muted loop style='{LAYOUTS[layout]}'></video>"
    (folder / "call.html").write_text(
        f"<!doctype html><title>the call</title><body style='margin:0'>{video}"
    )
    events = folder / f"events-{layout}-{hint}.jsonl"
    served = ServeThread(events)
    samples = []
    browser = driver.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        context.new_page().goto((folder / "call.html").as_uri())
        page = context.new_page()
        if hint == "detail":  # undo /publish's hint: what a page that sets none sends
            page.add_init_script(
                "const capture0 = navigator.mediaDevices.getDisplayMedia.bind("
                "navigator.mediaDevices); navigator.mediaDevices.getDisplayMedia = async (c) => "
                "{ const m = await capture0(c); const t = m.getVideoTracks()[0];"
                " Object.defineProperty(t, 'contentHint', {set() {}, get() { return 'detail'; }});"
                " return m; };"
            )
        page.goto(f"{served.url}/publish#token={TOKEN}&source=screen")
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(1.0)
            if sample := page.evaluate(SENDER_STATS):
                samples.append(sample)
        page.click("#stop")
        time.sleep(1.0)
    finally:
        browser.close()
        served.close()
    return summarise(layout, hint, samples, events)


def summarise(layout: str, hint: str, samples: list[dict], events: Path) -> Case:
    """The table row of one case."""
    case = Case(layout, hint)
    if samples:
        case.codec = samples[-1]["codec"]
        case.sizes = " -> ".join(dict.fromkeys(f"{s['width']}x{s['height']}" for s in samples))
        fps = [s["fps"] for s in samples if s["fps"]]
        case.fps = f"{min(fps):.0f}-{max(fps):.0f}" if fps else "-"
        rates = [
            8 * (b["bytes"] - a["bytes"]) / 1000 for a, b in zip(samples, samples[1:], strict=False)
        ]
        case.kbps = f"{min(rates):.0f}-{max(rates):.0f}" if rates else "-"
        case.limits = ", ".join(sorted({s["limit"] for s in samples if s["limit"]}))
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    case.logits = tuple(e["logit"] for e in lines if e["type"] == "verdict")
    case.alerts = sum(e["type"] == "alert" for e in lines)
    return case


def file_logits(clip: Path, folder: Path) -> list[float]:
    """Window logits of ``clip`` from its file, as ``run`` gives them (default stride)."""
    events = folder / "file.jsonl"
    command = [sys.executable, str(ROOT / "run_stream.py"), "run", str(clip)]
    subprocess.run([*command, "--weights", str(WEIGHTS), "--jsonl", str(events)], check=True)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    return [e["logit"] for e in lines if e["type"] == "verdict"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clip", choices=("manipulated", "genuine"), default="manipulated")
    args = parser.parse_args()
    clip = DEMO_MANIPULATED if args.clip == "manipulated" else DEMO_GENUINE
    from playwright.sync_api import sync_playwright

    cases = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
        reference = file_logits(clip, Path(folder))
        for layout in LAYOUTS:
            for hint in ("detail", "motion"):
                cases.append(run_case(driver, Path(folder), clip, layout, hint, args.seconds))
    print(
        f"{args.clip} clip, {args.seconds:.0f} s per case; from its file: median window logit "
        f"{statistics.median(reference):+.1f}, highest {max(reference):+.1f}"
    )
    print(
        "| layout | hint | codec | frame size | fps | kbit/s | limited by | verdicts "
        "| median logit | highest | alerts |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        median = f"{statistics.median(c.logits):+.1f}" if c.logits else "-"
        top = f"{max(c.logits):+.1f}" if c.logits else "-"
        print(
            f"| {c.layout} | {c.hint} | {c.codec} | {c.sizes} | {c.fps} | {c.kbps} | "
            f"{c.limits or '-'} | {len(c.logits)} | {median} | {top} | {c.alerts} |"
        )


if __name__ == "__main__":
    main()
