#!/usr/bin/python3
"""A small RTSP server for tests: serves one H.264 clip on 127.0.0.1 at camera pace.

Runs with the *system* Python (Debian's ``python3-gst-1.0`` and ``gir1.2-gst-rtsp-server-1.0``),
not the project's virtual environment::

    /usr/bin/python3 tests/rtsp_server.py tests/data/talking.mp4 --port 8554 --loop

The clip's H.264 access units are read once (no re-encoding) and pushed into each client's
pipeline at their own timestamps; ``--loop`` repeats them with timestamps that keep going up.
``--stall-after S`` stops sending after S seconds while keeping the connection open (a hung
camera). When the server listens it prints ``ready rtsp://127.0.0.1:PORT/PATH`` on stdout.
SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

#: the per-client pipeline: our buffers in, RTP out (SPS/PPS before every key frame).
LAUNCH = (
    "( appsrc name=src is-live=true format=time ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


class Clip:
    """The clip's H.264 access units in decode order, with caps and total duration."""

    def __init__(self, path: str) -> None:
        pipeline = Gst.parse_launch(
            "filesrc name=file ! qtdemux ! h264parse ! "
            "video/x-h264,stream-format=avc,alignment=au ! appsink name=sink sync=false"
        )
        pipeline.get_by_name("file").set_property("location", path)
        sink = pipeline.get_by_name("sink")
        pipeline.set_state(Gst.State.PLAYING)
        self.buffers: list[Gst.Buffer] = []
        self.caps: Gst.Caps | None = None
        while (sample := sink.emit("pull-sample")) is not None:
            self.caps = sample.get_caps()
            self.buffers.append(sample.get_buffer().copy_deep())
        pipeline.set_state(Gst.State.NULL)
        if not self.buffers:
            raise SystemExit(f"error: no H.264 video in {path}")
        last = self.buffers[-1]
        self.duration = max(b.pts for b in self.buffers) + (last.duration or 0)


class Feeder(threading.Thread):
    """Pushes the clip into one client's ``appsrc`` in real time until the client leaves."""

    def __init__(self, appsrc: Gst.Element, clip: Clip, loop: bool, stall_after: float) -> None:
        super().__init__(daemon=True)
        self.appsrc, self.clip, self.loop, self.stall_after = appsrc, clip, loop, stall_after
        self.stop = threading.Event()

    def run(self) -> None:
        while self.appsrc.get_clock() is None:  # the client has not sent PLAY yet
            if self.stop.wait(0.01):
                return
        start_running = self.appsrc.get_clock().get_time() - self.appsrc.get_base_time()
        start_wall = time.monotonic()
        offset = 0
        while not self.stop.is_set():
            for original in self.clip.buffers:
                elapsed = (offset + original.dts) / Gst.SECOND
                if self.stop.wait(max(0.0, start_wall + elapsed - time.monotonic())):
                    return
                if self.stall_after and time.monotonic() - start_wall > self.stall_after:
                    self.stop.wait()  # hung camera: connection open, nothing sent
                    return
                buffer = original.copy()
                buffer.pts = start_running + offset + original.pts
                buffer.dts = start_running + offset + original.dts
                if self.appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
                    return  # client gone: its pipeline is flushing or stopped
            if not self.loop:
                self.appsrc.emit("end-of-stream")
                return
            offset += self.clip.duration


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    """A fresh pipeline per client, fed by its own :class:`Feeder`."""

    def __init__(self, clip: Clip, loop: bool, stall_after: float) -> None:
        super().__init__()
        self.clip, self.loop, self.stall_after = clip, loop, stall_after
        self.set_launch(LAUNCH)
        self.set_shared(False)
        self.connect("media-configure", self._configure)

    def _configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.clip.caps)
        feeder = Feeder(appsrc, self.clip, self.loop, self.stall_after)
        media.connect("unprepared", lambda _media: feeder.stop.set())
        feeder.start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", help="an MP4 file with an H.264 video stream")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--path", default="/clip", help="mount point (default /clip)")
    parser.add_argument("--loop", action="store_true", help="repeat the clip forever")
    parser.add_argument("--stall-after", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()

    Gst.init(None)
    clip = Clip(args.clip)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, ClipFactory(clip, args.loop, args.stall_after))
    if server.attach(None) == 0:
        print(f"error: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
