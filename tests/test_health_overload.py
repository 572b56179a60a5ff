"""`/healthz` over real HTTP: 503 "degraded" while an overloaded engine makes the pipeline
drop work, 200 "ok" again once the overload has passed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from live_support import (
    SlowBackend,
    narrow_model,
    one_torch_thread,  # noqa: F401 (autouse fixture)
)
from server_support import TOKEN

from stream import pipeline as pipeline_module
from stream.config import Settings
from stream.pipeline import Pipeline
from stream.server.app import Server, ServerSettings
from stream.sources.base import FileSource

TALKING = Path(__file__).parent / "data" / "talking.mp4"


def test_healthz_is_degraded_while_work_is_dropped_and_ok_after(monkeypatch):
    """A camera-paced clip, a window every frame, and an engine that sleeps 0.3 s per call:
    windows are dropped, so /healthz answers 503 with the reason; a quiet spell longer than
    DEGRADED_FOR (shortened here) brings it back to 200."""
    monkeypatch.setattr(pipeline_module, "DEGRADED_FOR", 1.0)

    async def main() -> tuple[list[tuple[int, dict]], tuple[int, dict]]:
        settings = Settings(stride=1, window_queue=2, prefetch_queue=8, max_batch=8, jsonl=None)
        pipeline = Pipeline(settings, SlowBackend(narrow_model(), delay=0.3))
        server = Server(pipeline, ServerSettings(token=TOKEN, port=0))
        await server.start()
        source = FileSource(TALKING, "cam", realtime=True, on_status=pipeline.emit)
        task = pipeline.add_source(source)
        answers = []
        async with aiohttp.ClientSession() as http:

            async def healthz() -> tuple[int, dict]:
                async with http.get(server.url + "/healthz") as reply:
                    return reply.status, await reply.json()

            while not task.done():
                answers.append(await healthz())
                await asyncio.sleep(0.1)
            while (after := await healthz())[0] != 200:
                await asyncio.sleep(0.2)
        await server.stop()
        await pipeline.stop(drain=True)
        return answers, after

    answers, after = asyncio.run(main())
    degraded = [report for status, report in answers if status == 503]
    assert degraded, "never degraded"
    assert all(report["status"] == "degraded" for report in degraded)
    assert any("falling behind" in reason for report in degraded for reason in report["reasons"])
    assert after[1]["status"] == "ok" and after[1]["reasons"] == []
    assert after[1]["streams"]["cam"]["windows_dropped"] > 0
