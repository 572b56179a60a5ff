"""A VideoRoom publisher in a process of its own: joins a room through Janus's HTTP API and
publishes a clip's video (looped) from an aiortc peer until it is told to leave.

    python -m tests.janus_publisher http://127.0.0.1:8088/janus 1234 alice clip.mp4

Run from the repository root. Create a session, attach the VideoRoom plugin, ``join`` as a
publisher under the display name, ``configure`` with the SDP offer, take the answer;
keep-alives are the session's. ``--audio-only`` publishes silence instead (a participant
whose camera is off); ``--encrypted`` publishes the clip's VP8 frames with everything but
their clear header bytes scrambled, as end-to-end encryption through insertable streams
leaves them (:class:`EncryptedClip`). Prints ``publishing ID`` (the participant's Janus
id) once the answer is in. SIGTERM: say ``leave`` and end; SIGKILL: vanish. The API secret
comes from ``JANUS_API_SECRET``. ICE uses only ``--ice-host`` (no STUN).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from fractions import Fraction

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from stream.server.whip import use_ice_hosts
from stream.sources.rooms.janus_api import JanusSession

#: the clips' frame rate, and the RTP clock of video
FPS, CLOCK = 25, 90_000
#: the bytes of a VP8 key frame and of any other frame that end-to-end encryption leaves
#: clear (the frame tag, and a key frame's start code and size), so that SFUs can route it
CLEAR_KEY_FRAME, CLEAR_FRAME = 10, 3


class LoopedClip(VideoStreamTrack):
    """A clip's frames at 25 fps, looped, with times that keep going forward across loops
    (a camera's; aiortc's own looping player starts its times over)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        with av.open(path) as container:
            self.frames = [f.reformat(format="yuv420p") for f in container.decode(video=0)]
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        index = self.sent
        self.sent += 1
        await asyncio.sleep(max(0.0, self.start + index / FPS - time.monotonic()))
        frame = self.frames[index % len(self.frames)]
        frame.pts, frame.time_base = index * CLOCK // FPS, Fraction(1, CLOCK)
        return frame


class EncryptedClip(LoopedClip):
    """The clip's frames as VP8 (aiortc's own encoder), each frame's payload after its
    clear header bytes XORed with a random key stream: ciphertext to anyone without the
    key, as insertable-streams (SFrame-style) encryption leaves it. The sender packetizes
    the frames as they are."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.encoder = Vp8Encoder()

    async def recv(self) -> av.Packet:
        frame = await super().recv()
        payloads, _ = await asyncio.to_thread(self.encoder.encode, frame)
        data = b"".join(vp8_depayload(payload) for payload in payloads)
        clear = CLEAR_FRAME if data[0] & 1 else CLEAR_KEY_FRAME  # bit 0 clear: a key frame
        secret, size = data[clear:], len(data) - clear
        scrambled = int.from_bytes(secret) ^ int.from_bytes(os.urandom(size))
        packet = av.Packet(data[:clear] + scrambled.to_bytes(size))
        packet.pts, packet.time_base = frame.pts, frame.time_base
        return packet


async def publish(args: argparse.Namespace, secret: str) -> None:
    """Publish ``args.clip`` (looped) in ``args.room`` as ``args.name`` until SIGTERM."""
    api, room, name, clip, pin = args.api, args.room, args.name, args.clip, args.pin
    use_ice_hosts([args.ice_host])
    leave = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, leave.set)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if args.audio_only:
        track = AudioStreamTrack()
    else:
        track = (EncryptedClip if args.encrypted else LoopedClip)(clip)
    pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.create(http, api, secret=secret or None)
        handle = await session.attach("janus.plugin.videoroom")
        join = {"request": "join", "ptype": "publisher", "room": room, "display": name}
        if pin:
            join["pin"] = pin
        joined = await session.message(handle, join)
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        configured = await session.message(
            handle, {"request": "configure", "audio": args.audio_only, "video": True}, offer
        )
        await pc.setRemoteDescription(RTCSessionDescription(**configured.jsep))
        print(f"publishing {joined.data['id']}", flush=True)
        await leave.wait()
        await session.message(handle, {"request": "leave"})
        await session.close()
    await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api", help="the HTTP API's root, e.g. http://127.0.0.1:8088/janus")
    parser.add_argument("room", type=int, help="the VideoRoom's id")
    parser.add_argument("name", help="the display name")
    parser.add_argument("clip", help="a video file")
    parser.add_argument("--pin", default="", help="the room's PIN")
    parser.add_argument("--audio-only", action="store_true", help="publish silence, no video")
    parser.add_argument(
        "--encrypted", action="store_true", help="scramble the video as E2E encryption does"
    )
    parser.add_argument("--ice-host", default="127.0.0.1", help="the one ICE host address")
    args = parser.parse_args()
    asyncio.run(publish(args, os.environ.get("JANUS_API_SECRET", "")))


if __name__ == "__main__":
    main()
