"""`/healthz` over real HTTP: 503 "degraded" while an overloaded engine makes the pipeline
drop work, 200 "ok" again once the overload has passed."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from stream.pipeline import Pipeline
from stream.server.app import Server
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings
from stream.sources.files import FileSource
from tests.live_support import (
    TALKING,
    SlowBackend,
    narrow_model,
    run,
)
from tests.server_support import AUTH, TOKEN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: seconds the 4 s camera-paced clip may take to be read through (it drops, so it keeps pace).
CLIP_DEADLINE = 30.0
#: seconds /healthz may take to answer 200 again once the clip has ended.
RECOVERY_DEADLINE = 20.0


def test_healthz_is_degraded_while_work_is_dropped_and_ok_after():
    """A camera-paced clip, a window every frame, and an engine that sleeps 0.3 s per call:
    windows are dropped, so /healthz answers 503 with the reason; a quiet spell longer than
    ``degraded_for`` (shortened here) brings it back to 200."""

    async def main() -> tuple[list[tuple[int, dict]], tuple[int, dict]]:
        settings = Settings.of(stride=1, window_queue=2, prefetch_queue=8, max_batch=8, jsonl=None)
        pipeline = Pipeline(settings, SlowBackend(narrow_model(), delay=0.3))
        pipeline.health_check.degraded_for = 1.0
        server = Server(pipeline, ServerSettings(token=TOKEN, port=0))
        await server.start()
        source = FileSource(TALKING, "cam", realtime=True)
        task = pipeline.add_source(source)
        answers = []
        loop = asyncio.get_running_loop()
        try:
            async with aiohttp.ClientSession() as http:

                async def healthz() -> tuple[int, dict]:
                    async with http.get(server.url + "/healthz", headers=AUTH) as reply:
                        return reply.status, await reply.json()

                deadline = loop.time() + CLIP_DEADLINE
                while not task.done():
                    if loop.time() > deadline:
                        pytest.fail(
                            f"the 4 s clip was still being read after {CLIP_DEADLINE:g} s; "
                            f"last /healthz: {answers[-1] if answers else 'none'}"
                        )
                    answers.append(await healthz())
                    await asyncio.sleep(0.1)
                deadline = loop.time() + RECOVERY_DEADLINE
                while (after := await healthz())[0] != 200:
                    if loop.time() > deadline:
                        pytest.fail(
                            f"/healthz did not recover to 200 within {RECOVERY_DEADLINE:g} s "
                            f"after the clip ended; last answer: {after}"
                        )
                    await asyncio.sleep(0.2)
        finally:
            await server.stop()
            await pipeline.stop(drain=True)
        return answers, after

    answers, after = run(main(), timeout=CLIP_DEADLINE + RECOVERY_DEADLINE + 30)
    degraded = [report for status, report in answers if status == 503]
    assert degraded, "never degraded"
    assert all(report["status"] == "degraded" for report in degraded)
    assert any("falling behind" in reason for report in degraded for reason in report["reasons"])
    assert after[1]["status"] == "ok" and after[1]["reasons"] == []
    assert after[1]["streams"]["cam"]["windows_dropped"] > 0
