"""Shared helpers for the server and WHIP tests: a real pipeline behind a real server on
127.0.0.1, and real aiortc peers that make offers and publish clips."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
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


class Publisher(VideoStreamTrack):
    """Sends ``pictures`` at 25 fps, over and over; after ``moving`` of them (None: never
    until :meth:`hold`), on ``mode``: ``"stop"`` sends nothing more (ICE stays up),
    ``"freeze"`` sends the last one again and again; until :attr:`resume` is set, then the
    pictures go on."""

    def __init__(
        self, pictures: list[np.ndarray], moving: int | None = None, mode: str = "stop"
    ) -> None:
        super().__init__()
        self.pictures, self.moving, self.mode = pictures, moving, mode
        self.resume = asyncio.Event()
        self.sent = 0

    def hold(self) -> None:
        """Stop the picture from the next frame on, until :attr:`resume` is set again."""
        self.moving = self.sent
        self.resume.clear()

    async def recv(self) -> av.VideoFrame:
        held = self.moving is not None and self.sent >= self.moving
        if held and not self.resume.is_set():
            if self.mode == "stop":
                await self.resume.wait()
            index = (self.moving - 1) % len(self.pictures)
        else:
            index = self.sent % len(self.pictures)
        await asyncio.sleep(0.04)
        self.sent += 1
        frame = av.VideoFrame.from_ndarray(self.pictures[index], format="rgb24")
        frame.pts, frame.time_base = self.sent * 3600, fractions.Fraction(1, 90000)
        return frame


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
