"""OBS Studio's WHIP output, as OBS offers it: one audio (Opus) and one video (H.264,
packetization mode 1) send-only m-line, bundled, with the bearer token. A real aiortc peer
makes that offer and sends a real clip in H.264; the answer declines the audio and takes
the H.264 video, and the stream is scored."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import AudioStreamTrack
from aiortc.sdp import SessionDescription

from engines.backends import TorchBackend
from engines.method import sigmoid
from tests.live_support import TALKING, narrow_model, run
from tests.server_support import AUTH, SDP_HEADERS, accept_answer, served


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


def only(kind: str, mime: str):
    """The sender codecs of ``kind`` whose mime type is ``mime``."""
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime]


async def obs_like_peer() -> tuple[RTCPeerConnection, str]:
    """A peer that offers like OBS: audio first (Opus), then H.264 video (packetization
    mode 1), both send-only; the video is the talking clip."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    audio = pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    audio.setCodecPreferences(only("audio", "audio/opus"))
    video = pc.addTransceiver(MediaPlayer(str(TALKING)).video, direction="sendonly")
    h264 = [c for c in only("video", "video/H264") if "packetization-mode=1" in str(c.parameters)
            or c.parameters.get("packetization-mode") == "1"]  # fmt: skip
    video.setCodecPreferences(h264)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def test_an_obs_shaped_offer_gets_h264_video_audio_declined_and_verdicts(backend):
    async def main():
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            events = pipeline.subscribe()
            first = asyncio.ensure_future(anext(events))
            pc, offer = await obs_like_peer()
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                status, answer = reply.status, await reply.text()
                location, stream = reply.headers["Location"], reply.headers["X-Stream-Id"]
            await accept_answer(pc, answer)
            seen = [(await first).to_dict()]
            while not any(e["type"] == "verdict" and e["stream"] == stream for e in seen):
                seen.append((await anext(events)).to_dict())
            async with http.delete(server.url + location, headers=AUTH) as reply:
                deleted = reply.status
            await pc.close()
            return offer, status, answer, stream, seen, deleted

    offer, status, answer, stream, seen, deleted = run(main())
    offered = SessionDescription.parse(offer)
    assert [m.kind for m in offered.media] == ["audio", "video"]  # the shape OBS sends
    assert [c.name for c in offered.media[0].rtp.codecs] == ["opus"]
    assert {c.name for c in offered.media[1].rtp.codecs} <= {"H264", "rtx"}
    assert status == 201 and deleted == 200
    audio, video = SessionDescription.parse(answer).media
    assert audio.kind == "audio" and audio.direction == "inactive"  # audio is not scored
    assert video.direction == "recvonly"
    assert {c.name for c in video.rtp.codecs} <= {"H264", "rtx"}  # what it will decode
    h264 = [c for c in video.rtp.codecs if c.name == "H264"]
    assert h264 and all(c.parameters["packetization-mode"] == "1" for c in h264)
    verdict = next(e for e in seen if e["type"] == "verdict" and e["stream"] == stream)
    # no thresholds here: the probability is the sigmoid of this verdict's own logit
    assert verdict["probability"] == pytest.approx(sigmoid(verdict["logit"]), abs=1e-4)
