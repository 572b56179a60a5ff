"""Issue 24, row 26: a WHIP publisher that keeps ICE alive but sends no new picture (its
video stopped, or a frozen tab resending its last frame) was "connected" 30 s later with
``/healthz`` ok. Now its stream is ``stalled`` after ``stall_timeout`` (health degraded,
no frozen frame scored), and ``connected`` again when the picture moves; real aiortc
publishers on 127.0.0.1."""

from __future__ import annotations

import asyncio

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from engines.backends import TorchBackend
from stream.events import StreamStatus
from tests.live_support import TALKING, narrow_model, run
from tests.server_support import AUTH, SDP_HEADERS, Publisher, accept_answer, served

#: seconds without a new picture before a stall, in these tests.
STALL = 1.0


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


@pytest.fixture(scope="module")
def pictures() -> list[np.ndarray]:
    """The talking clip's frames, RGB."""
    with av.open(str(TALKING)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.parametrize("mode", ["stop", "freeze"])
def test_a_publisher_without_a_new_picture_is_stalled_then_connected_again(
    backend: TorchBackend, pictures: list[np.ndarray], mode: str
) -> None:
    async def main() -> tuple[list[StreamStatus], dict, int, dict]:
        async with (
            served(backend, stall_timeout=STALL) as (server, pipeline),
            aiohttp.ClientSession() as http,
        ):
            events = pipeline.subscribe()
            first = asyncio.ensure_future(anext(events))
            track = Publisher(pictures, moving=25, mode=mode)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver(track, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            body = pc.localDescription.sdp
            async with http.post(server.url + "/whip", data=body, headers=SDP_HEADERS) as reply:
                await accept_answer(pc, await reply.text())
            seen = [await first]
            statuses = lambda: [e for e in seen if isinstance(e, StreamStatus)]  # noqa: E731
            while not statuses() or statuses()[-1].status != "stalled":
                seen.append(await anext(events))
            frames_when_stalled = pipeline.workers[seen[0].stream].counts.frames
            async with http.get(server.url + "/healthz", headers=AUTH) as reply:
                stalled_health = await reply.json()
            await asyncio.sleep(STALL)  # a frozen picture goes on arriving: none is scored
            frames_while_stalled = pipeline.workers[seen[0].stream].counts.frames
            track.resume.set()
            while statuses()[-1].status != "connected":
                seen.append(await anext(events))
            async with http.get(server.url + "/healthz", headers=AUTH) as reply:
                health = await reply.json()
            await pc.close()
            return statuses(), stalled_health, frames_while_stalled - frames_when_stalled, health

    statuses, stalled_health, frames_while_stalled, health = run(main())
    stream = statuses[0].stream
    assert [str(s.status) for s in statuses] == ["connected", "stalled", "connected"]
    assert statuses[1].detail.startswith(f"no new picture for {STALL:g} s")
    assert statuses[2].detail.startswith("the picture moves again after")
    assert stalled_health["status"] == "degraded"
    assert f"stream {stream} is stalled" in stalled_health["reasons"]
    assert stalled_health["streams"][stream]["status"] == "stalled"
    assert frames_while_stalled == 0
    assert health["streams"][stream]["status"] == "connected"
