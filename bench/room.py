"""A call room watched live: verdicts per participant per second, and the CPU it costs.

Usage: ``python -m bench.room [--participants 2 4] [--seconds 20]``

For each room size, Debian's janus (the test rig, ``tests/janus_support.py``) holds a
VideoRoom whose participants are aiortc publishers in processes of their own, the demo's
genuine and manipulated clips in turn (400x300, 25 fps, VP8). A watcher in this process
(``janus://``, the demo detector on ONNX Runtime, default settings) scores them. Once every
participant has had a verdict, it counts for ``--seconds``: verdicts per participant per
second (the lowest and highest participant), frames dropped, and the CPU time of the
watcher, of janus and of the publishers, each in cores (CPU seconds per second). The
publishers run on the same machine: their encoding competes with the watcher for the cores.
One table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

ROOM = 1234


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch(address: str, names: list[str], seconds: float) -> tuple[list[int], int, float]:
    """Watch the room at ``address`` until each of ``names`` has a verdict, then count for
    ``seconds``: verdicts per participant, frames dropped, and this process's CPU seconds."""
    from stream.detector import Detector
    from stream.events import Verdict
    from stream.settings.pipeline import Settings
    from stream.sources.open import open_source
    from training.demo_detector import WEIGHTS

    detector = Detector.load(WEIGHTS, backend="onnxruntime")
    pipeline = detector.pipeline(Settings.of(jsonl=None))
    counts = dict.fromkeys(names, 0)
    everyone = asyncio.Event()

    async def count() -> None:
        async for event in pipeline.subscribe():
            if isinstance(event, Verdict) and event.stream in counts:
                counts[event.stream] += 1
                if all(counts.values()):
                    everyone.set()

    counting = asyncio.ensure_future(count())
    pipeline.add(open_source(address))
    await asyncio.wait_for(everyone.wait(), 120)
    start = dict(counts)
    dropped = sum(w.counts.frames_dropped for w in pipeline.workers.values())
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    verdicts = [counts[name] - start[name] for name in names]
    dropped = sum(w.counts.frames_dropped for w in pipeline.workers.values()) - dropped
    await pipeline.stop(drain=False)
    counting.cancel()
    detector.close()
    return verdicts, dropped, cpu


def measure(participants: int, seconds: float) -> tuple[str, ...]:
    """One room of ``participants`` publishers; the table's row."""
    from stream.server.whip import use_ice_hosts
    from tests.janus_support import MEDIA_HOST, Janus, Publisher
    from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED

    use_ice_hosts([MEDIA_HOST])
    with tempfile.TemporaryDirectory() as folder:
        janus = Janus(Path(folder))
        janus.start()
        publishers: list[Publisher] = []
        try:
            janus.create_room(ROOM)
            for k in range(participants):
                clip = DEMO_GENUINE if k % 2 == 0 else DEMO_MANIPULATED
                publishers.append(Publisher(janus, ROOM, f"p{k}", clip))
            janus.wait_publishing(ROOM, {p.name for p in publishers})
            pids = [janus.process.pid, *(p.process.pid for p in publishers)]
            before = [cpu_seconds(pid) for pid in pids]
            names = [f"{ROOM}/{p.name}" for p in publishers]
            wall = time.monotonic()
            verdicts, dropped, watcher = asyncio.run(watch(janus.address(ROOM), names, seconds))
            wall = time.monotonic() - wall
            used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        finally:
            for publisher in publishers:
                publisher.leave()
            janus.stop()
    # janus's and the publishers' CPU is over the whole watch (warm-up included)
    return (
        str(participants),
        f"{min(verdicts) / seconds:.2f} - {max(verdicts) / seconds:.2f}",
        str(dropped),
        f"{watcher / seconds:.2f}",
        f"{used[0] / wall:.2f}",
        f"{sum(used[1:]) / wall:.2f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    header = (
        "participants",
        "verdicts/participant/s",
        "frames dropped",
        "watcher CPU",
        "janus CPU",
        "publishers CPU",
    )
    rows = [measure(n, args.seconds) for n in args.participants]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"\n{os.cpu_count()} cores; CPU in cores (CPU seconds per second); "
        f"{args.seconds:g} s counted per room after every participant's first verdict"
    )


if __name__ == "__main__":
    main()
