#!/usr/bin/python3
"""A small RTSP server for tests: serves H.264 clips on 127.0.0.1 at camera pace.

Runs with the *system* Python (Debian's ``python3-gst-1.0`` and ``gir1.2-gst-rtsp-server-1.0``),
not the project's virtual environment::

    /usr/bin/python3 tests/rtsp_server.py tests/data/talking.mp4 --port 8554 --loop

The clips' H.264 access units are read once (no re-encoding) and pushed into each client's
pipeline at their own timestamps, one clip after the other (clips of different sizes make a
mid-stream change of resolution); ``--loop`` repeats them with timestamps that keep going
up. Faults on request: ``--stall-after S`` stops sending after S seconds while keeping the
connection open (a hung camera); ``--corrupt N`` flips bytes in the picture data of every
Nth non-key frame. When the server listens it prints ``ready rtsp://127.0.0.1:PORT/PATH``
on stdout. SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass

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
        first, last = self.buffers[0], self.buffers[-1]
        # decode-order span: the next loop's first frame follows this one's last at one frame's step
        self.duration = last.dts + (last.duration or 0) - first.dts


@dataclass(frozen=True)
class Faults:
    """What goes wrong on purpose: ``stall_after`` seconds (0: never), every ``corrupt``-th
    non-key frame damaged (0: none)."""

    stall_after: float = 0.0
    corrupt: int = 0


class Feeder(threading.Thread):
    """Pushes the clips into one client's ``appsrc`` in real time until the client leaves."""

    def __init__(self, appsrc: Gst.Element, clips: list[Clip], loop: bool, faults: Faults) -> None:
        super().__init__(daemon=True)
        self.appsrc, self.clips, self.loop, self.faults = appsrc, clips, loop, faults
        self.stop = threading.Event()
        self.random = random.Random(0)
        self.delta_frames = 0

    def run(self) -> None:
        start_running = Gst.CLOCK_TIME_NONE
        while start_running == Gst.CLOCK_TIME_NONE:  # until the client's PLAY has taken effect
            if self.stop.wait(0.01):
                return
            if self.appsrc.get_state(0)[1] == Gst.State.PLAYING:
                start_running = self.appsrc.get_current_running_time()
        start_wall = time.monotonic()
        offset = 0
        while not self.stop.is_set():
            for clip in self.clips:
                if self.appsrc.get_property("caps") != clip.caps:  # a new size: new SPS/PPS
                    self.appsrc.set_property("caps", clip.caps)
                for original in clip.buffers:
                    elapsed = (offset + original.dts) / Gst.SECOND
                    if self.stop.wait(max(0.0, start_wall + elapsed - time.monotonic())):
                        return
                    stall = self.faults.stall_after
                    if stall and time.monotonic() - start_wall > stall:
                        self.stop.wait()  # hung camera: connection open, nothing sent
                        return
                    # copy_deep: Buffer.copy() in Python only adds a reference, and the clip's
                    # buffers must keep their own timestamps for the next loop and client
                    buffer = (
                        self._damaged(original) if self._due(original) else original.copy_deep()
                    )
                    buffer.pts = start_running + offset + original.pts
                    buffer.dts = start_running + offset + original.dts
                    if self.appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
                        return  # client gone: its pipeline is flushing or stopped
                offset += clip.duration
            if not self.loop:
                self.appsrc.emit("end-of-stream")
                return

    def _due(self, buffer: Gst.Buffer) -> bool:
        """Whether ``buffer`` is the next non-key frame to damage."""
        if not self.faults.corrupt or not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT):
            return False
        self.delta_frames += 1
        return self.delta_frames % self.faults.corrupt == 0

    def _damaged(self, buffer: Gst.Buffer) -> Gst.Buffer:
        """A copy of ``buffer`` with a few bytes flipped inside its largest NAL unit (the
        4-byte length prefixes stay intact: a damaged picture, not a broken packet)."""
        data = bytearray(buffer.extract_dup(0, buffer.get_size()))
        units, position = [], 0
        while position + 4 <= len(data):
            size = int.from_bytes(data[position : position + 4], "big")
            units.append((position + 4, size))
            position += 4 + size
        start, size = max(units, key=lambda unit: unit[1], default=(0, 0))
        if size > 8:
            for _ in range(4):
                data[self.random.randrange(start + 4, start + size)] ^= 0xFF
        damaged = Gst.Buffer.new_wrapped(bytes(data))
        damaged.duration = buffer.duration
        damaged.set_flags(buffer.get_flags())
        return damaged


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    """A fresh pipeline per client, fed by its own :class:`Feeder`."""

    def __init__(self, clips: list[Clip], loop: bool, faults: Faults) -> None:
        super().__init__()
        self.clips, self.loop, self.faults = clips, loop, faults
        self.set_launch(LAUNCH)
        self.set_shared(False)
        self.connect("media-configure", self._configure)

    def _configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.clips[0].caps)
        feeder = Feeder(appsrc, self.clips, self.loop, self.faults)
        media.connect("unprepared", lambda _media: feeder.stop.set())
        feeder.start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", help="MP4 files with H.264 video, played in turn")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--path", default="/clip", help="mount point (default /clip)")
    parser.add_argument("--loop", action="store_true", help="repeat the clips forever")
    parser.add_argument("--stall-after", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--corrupt", type=int, default=0, metavar="N")
    args = parser.parse_args()

    Gst.init(None)
    clips = [Clip(path) for path in args.clips]
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = ClipFactory(clips, args.loop, Faults(args.stall_after, args.corrupt))
    server.get_mount_points().add_factory(args.path, factory)
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
