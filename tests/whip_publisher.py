"""A WHIP publisher in a process of its own: sends a clip's video until it is killed.

    python -m tests.whip_publisher http://127.0.0.1:8080/whip tests/data/talking.mp4

Run from the repository root. The bearer token comes from ``LIPFORENSICS_TOKEN``. ICE stays
on 127.0.0.1, without STUN. Prints ``publishing LOCATION`` once the endpoint has answered,
then loops the clip. Tests kill it (SIGKILL) to play a publisher that vanishes without
``DELETE``.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from stream.server.whip import use_ice_hosts


async def publish(url: str, clip: str, token: str) -> None:
    """Publish ``clip`` (looped) to the WHIP endpoint ``url`` until the process ends."""
    use_ice_hosts(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(MediaPlayer(clip, loop=True).video, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=pc.localDescription.sdp, headers=headers) as reply,
    ):
        if reply.status != 201:
            raise SystemExit(f"error: {reply.status} {await reply.text()}")
        location = reply.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(await reply.text(), "answer"))
    print(f"publishing {location}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip")
    parser.add_argument("clip", help="a video file")
    args = parser.parse_args()
    asyncio.run(publish(args.url, args.clip, os.environ.get("LIPFORENSICS_TOKEN", "")))


if __name__ == "__main__":
    main()
