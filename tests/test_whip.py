"""WHIP ingest (RFC 9725) with real aiortc peers over loopback and the real pipeline."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from live_support import narrow_model
from server_support import (
    AUTH,
    SDP_HEADERS,
    TOKEN,
    accept_answer,
    make_offer,
    publishing_peer,
    served,
)

from engines.backends import TorchBackend
from stream.whip import Refusal, parse_offer

#: bounds every test's waiting, so a broken endpoint fails the test instead of hanging it.
TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


def run(coroutine: object) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT))


def test_a_published_clip_is_scored_and_delete_ends_the_session(backend: TorchBackend) -> None:
    async def main() -> tuple[list[dict], dict]:
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            events = pipeline.subscribe()
            first = asyncio.ensure_future(anext(events))  # subscribed before anything happens
            pc, offer = await publishing_peer()
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                assert reply.status == 201
                assert reply.content_type == "application/sdp"
                location = reply.headers["Location"]
                answer = await reply.text()
            await accept_answer(pc, answer)
            seen = [await first]
            while not any(event["type"] == "verdict" for event in seen):
                seen.append(await anext(events))
            async with http.delete(server.url + location, headers=AUTH) as reply:
                assert reply.status == 200
            while seen[-1].get("status") != "ended":  # the stream ends with its session
                seen.append(await anext(events))
            async with http.delete(server.url + location, headers=AUTH) as reply:
                assert reply.status == 404  # gone for good
            assert server.whip.sessions == {}
            await pc.close()
            return seen, pipeline.health()

    seen, health = run(main())
    verdict = next(event for event in seen if event["type"] == "verdict")
    stream = verdict["stream"]
    assert stream.startswith("whip-")
    assert 0.0 <= verdict["probability"] <= 1.0 and len(verdict["pts"]) == 2
    statuses = [e["status"] for e in seen if e["type"] == "status" and e["stream"] == stream]
    assert statuses[0] == "connected" and statuses[-2:] == ["disconnected", "ended"]
    assert health["streams"][stream]["windows_scored"] >= 1


def test_location_ids_are_unguessable_and_distinct(backend: TorchBackend) -> None:
    async def main() -> list[str]:
        async with served(backend) as (server, _), aiohttp.ClientSession() as http:
            locations, peers = [], []
            for _ in range(2):
                pc, offer = await make_offer("video")
                peers.append(pc)
                async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as r:
                    locations.append(r.headers["Location"])
            for pc in peers:
                await pc.close()
            return locations

    first, second = run(main())
    assert first != second
    assert all(
        loc.startswith("/whip/") and len(loc) - len("/whip/") >= 32 for loc in (first, second)
    )


BAD_REQUESTS = [
    # (headers, body, expected status, words in the reason)
    ({"Content-Type": "application/sdp"}, "offer", 401, "token"),
    ({**SDP_HEADERS, "Authorization": f"Bearer {TOKEN[:-1]}X"}, "offer", 401, "token"),
    ({**SDP_HEADERS, "Authorization": f"Bearer {TOKEN}X"}, "offer", 401, "token"),
    ({**SDP_HEADERS, "Authorization": f"Basic {TOKEN}"}, "offer", 401, "token"),
    ({**AUTH, "Content-Type": "application/json"}, "offer", 415, "application/sdp"),
    (SDP_HEADERS, "hello", 400, "not an SDP offer"),
    (SDP_HEADERS, b"v=0\r\n\xff\xfe", 400, "UTF-8"),
    (SDP_HEADERS, "v=0\r\nm=video notaport UDP/TLS/RTP/SAVPF 96\r\n", 400, "malformed"),
    (SDP_HEADERS, "audio-only", 422, "no video"),
    (SDP_HEADERS, "v=0\r\n" + "a=x\r\n" * 20_000, 413, "larger"),
]


@pytest.mark.parametrize(("headers", "body", "status", "reason"), BAD_REQUESTS)
def test_bad_publish_requests_are_refused_with_a_reason(
    backend: TorchBackend, headers: dict, body: str | bytes, status: int, reason: str
) -> None:
    async def main() -> tuple[int, str, dict, int]:
        async with served(backend) as (server, _), aiohttp.ClientSession() as http:
            data = body
            pc = None
            if body in ("offer", "audio-only"):
                pc, data = await make_offer("video" if body == "offer" else "audio")
            async with http.post(server.url + "/whip", data=data, headers=headers) as reply:
                result = reply.status, await reply.text(), dict(reply.headers)
            if pc is not None:
                await pc.close()
            return (*result, len(server.whip.sessions))

    got_status, text, reply_headers, sessions = run(main())
    assert got_status == status
    assert reason in text
    assert TOKEN not in text
    assert sessions == 0  # nothing left open
    if status == 401:
        assert reply_headers["WWW-Authenticate"].startswith("Bearer")


def test_session_limit_unknown_sessions_and_options(backend: TorchBackend) -> None:
    async def main() -> None:
        async with served(backend, max_sessions=1) as (server, _), aiohttp.ClientSession() as http:
            pc, offer = await make_offer("video")
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                assert reply.status == 201
                location = reply.headers["Location"]
            other, offer = await make_offer("video")
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                assert reply.status == 429 and "Retry-After" in reply.headers
            async with http.delete(server.url + "/whip/not-a-session", headers=AUTH) as reply:
                assert reply.status == 404
            async with http.delete(server.url + location) as reply:
                assert reply.status == 401  # the right id without the token is not enough
            async with http.options(server.url + "/whip") as reply:
                assert reply.status == 204 and "POST" in reply.headers["Allow"]
            async with http.patch(server.url + location, headers=AUTH) as reply:
                assert reply.status == 405  # no trickle ICE
            async with http.delete(server.url + location, headers=AUTH) as reply:
                assert reply.status == 200
            assert server.whip.sessions == {}
            for peer in (pc, other):
                await peer.close()

    run(main())


def test_a_publisher_that_never_connects_is_dropped(backend: TorchBackend) -> None:
    async def main() -> list[dict]:
        async with served(backend, connect_timeout=0.5) as (server, pipeline):
            events = pipeline.subscribe()
            first = asyncio.ensure_future(anext(events))
            pc, offer = await make_offer("video")
            async with (
                aiohttp.ClientSession() as http,
                http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply,
            ):
                assert reply.status == 201  # ... and the answer is never applied
            seen = [await first]
            while seen[-1].get("status") != "disconnected":
                seen.append(await anext(events))
            assert server.whip.sessions == {}
            await pc.close()
            return seen

    seen = run(main())
    assert "not connected within" in seen[-1]["detail"]


def test_parse_offer_accepts_only_offers_that_send_video() -> None:
    video = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    assert parse_offer((video + "a=sendonly\r\n").encode()).startswith("v=0")
    for direction in ("recvonly", "inactive"):
        with pytest.raises(Refusal) as refused:
            parse_offer((video + f"a={direction}\r\n").encode())
        assert refused.value.status == 422
