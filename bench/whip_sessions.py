"""WHIP sessions that never connect: does the server's memory come back once they expire?

Usage: ``python -m bench.whip_sessions [--sessions 1000] [--batch 4] [--connect-timeout 1]``

A real server and pipeline on 127.0.0.1 (the narrow test network, loopback ICE only) take
one publisher's SDP offer again and again, ``--batch`` at a time (the session limit), and
no publisher ever answers ICE: each session is dropped after ``--connect-timeout`` seconds.
The process's RSS (and with ``--trace`` its Python memory, by tracemalloc) is read before
the first session, after each quarter, and at the end once every session has expired and
its stream has ended. One table is printed; a leak shows as memory that grows with the
sessions and stays.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc
from pathlib import Path


def rss_mb() -> float:
    """This process's resident memory, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(sessions: int, batch: int, connect_timeout: float) -> list[tuple[str, ...]]:
    """Publish ``sessions`` offers that never connect; the table's rows."""
    import aiohttp

    from engines.backends import TorchBackend
    from tests.live_support import narrow_model
    from tests.server_support import SDP_HEADERS, make_offer, served

    backend = TorchBackend(narrow_model())
    client, offer = await make_offer("video")
    await client.close()  # one offer text, posted again and again; no peer answers ICE
    rows = []
    async with (
        served(backend, max_sessions=batch, connect_timeout=connect_timeout) as (server, pipeline),
        aiohttp.ClientSession() as http,
    ):

        async def sample(label: str) -> None:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
            open_now = len(server.whip.sessions)
            running = sum(str(w.status) != "ended" for w in pipeline.workers.values())
            shown = "-" if traced is None else f"{traced / 2**20:.1f}"
            row = (label, shown, f"{rss_mb():.0f}", str(open_now), str(running))
            rows.append(row)

        await sample("before")
        done = 0
        while done < sessions:
            while len(server.whip.sessions) >= batch:
                await asyncio.sleep(0.05)
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                if reply.status == 201:
                    done += 1
                    if done % (sessions // 4 or 1) == 0:
                        await sample(f"after {done}")
        while server.whip.sessions or any(
            str(worker.status) != "ended" for worker in pipeline.workers.values()
        ):
            await asyncio.sleep(0.1)
        await asyncio.sleep(connect_timeout + 1)  # aiortc's own timers wind down
        await sample("all expired")
    return rows


def main() -> None:
    """Parse the options, measure, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4, help="sessions open at once")
    parser.add_argument("--connect-timeout", type=float, default=1.0)
    parser.add_argument(
        "--trace",
        action="store_true",
        help="trace Python memory (slows MediaPipe's start-up, so streams end seconds later)",
    )
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start()
    rows = asyncio.run(measure(args.sessions, args.batch, args.connect_timeout))
    print("| when | traced MB | RSS MB | sessions open | streams running |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
