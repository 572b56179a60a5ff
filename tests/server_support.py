"""Shared helpers for the server and WHIP tests: a real pipeline behind a real server on
127.0.0.1, and real aiortc peers that make offers and publish clips."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from engines.backends import TorchBackend
from stream.pipeline import Pipeline
from stream.server.app import Server
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings, WhipSettings
from tests.live_support import TALKING

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SDP_HEADERS = {**AUTH, "Content-Type": "application/sdp"}


@contextlib.asynccontextmanager
async def served(
    backend: TorchBackend, *, server: dict | None = None, **whip: object
) -> AsyncIterator[tuple[Server, Pipeline]]:
    """A started server (any free port, loopback ICE only) around a fresh pipeline."""
    pipeline = Pipeline(Settings.of(jsonl=None), backend)
    settings = ServerSettings(
        token=TOKEN,
        port=0,
        whip=WhipSettings(ice_hosts=("127.0.0.1",), **whip),
        **(server or {}),
    )
    http = Server(pipeline, settings)
    await http.start()
    try:
        yield http, pipeline
    finally:
        await http.stop()
        await pipeline.stop(drain=True)


async def make_offer(*kinds: str) -> tuple[RTCPeerConnection, str]:
    """A peer with one send-only transceiver per kind (no media) and its SDP offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pc.addTransceiver(kind, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def publishing_peer(clip: Path = TALKING) -> tuple[RTCPeerConnection, str]:
    """A peer that will send ``clip``'s video in real time, and its SDP offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(MediaPlayer(str(clip)).video, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def accept_answer(pc: RTCPeerConnection, answer: str) -> None:
    """Apply the WHIP endpoint's answer: media starts flowing."""
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
