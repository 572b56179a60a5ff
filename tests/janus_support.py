"""A real Janus for the tests: Debian's ``janus`` (1.1.x) with its HTTP API on a free
127.0.0.1 port, a configuration the test writes (only the HTTP transport and the VideoRoom
plugin, no STUN), and its VideoRoom rooms created through the API.

Janus never gathers ICE candidates on a loopback interface, so media flows over the
machine's own first IPv4 address (:data:`MEDIA_HOST`, the only one Janus and the aiortc
peers offer) on UDP ports 40000-60000, between processes of this machine.

`.ci/run` installs janus; elsewhere the Janus tests are skipped with the reason, unless
``LIPFORENSICS_CI`` is set (then a missing janus is a failure). Publishers are processes of
their own (``tests/janus_publisher.py``) so that they encode on their own core and can be
killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from stream.sources.rooms.janus_api import JanusSession
from tests.live_support import free_port

JANUS = shutil.which("janus") or "/usr/bin/janus"
#: where Debian puts Janus's plugins and transports
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
#: the repository root: publishers run there as ``python -m tests.janus_publisher``.
ROOT = Path(__file__).resolve().parents[1]
#: the address ICE uses on both sides: the machine's first non-loopback IPv4 address
MEDIA_HOST = next(iter(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)), "")


def require_janus() -> None:
    """Skip (fail under CI) when janus is not installed."""
    missing = [
        str(path)
        for path in (
            Path(JANUS),
            JANUS_LIB / "plugins" / "libjanus_videoroom.so",
            JANUS_LIB / "transports" / "libjanus_http.so",
        )
        if not path.exists()
    ]
    if not MEDIA_HOST:
        missing.append("IPv4 address besides loopback (Janus needs one for ICE)")
    if missing:
        reason = f"janus is not installed (apt: janus): no {', '.join(missing)}"
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class Janus:
    """One Janus process whose files live in ``directory``; :meth:`start` again after
    :meth:`kill` reuses the port (a restart: every session, room created by API and peer is
    gone).

    Args:
        directory: an empty folder for the configuration, the plugin links and the log.
        api_secret: the API secret every request must carry (None: none).
    """

    def __init__(self, directory: Path, api_secret: str | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.api_secret = api_secret
        self.process: subprocess.Popen[bytes] | None = None
        for kind, library in (("plugins", "videoroom"), ("transports", "http")):
            folder = directory / kind
            folder.mkdir()
            (folder / f"libjanus_{library}.so").symlink_to(
                JANUS_LIB / kind / f"libjanus_{library}.so"
            )
        (directory / "events").mkdir()
        (directory / "loggers").mkdir()
        secret = f'\n\tapi_secret = "{api_secret}"' if api_secret else ""
        (directory / "janus.jcfg").write_text(
            "general: {\n"
            f'\tconfigs_folder = "{directory}"\n'
            f'\tplugins_folder = "{directory}/plugins"\n'
            f'\ttransports_folder = "{directory}/transports"\n'
            f'\tevents_folder = "{directory}/events"\n'
            f'\tloggers_folder = "{directory}/loggers"\n'
            "\tdebug_level = 4\n"
            f"\tsession_timeout = 30{secret}\n"
            "}\n"
            'media: {\n\trtp_port_range = "40000-60000"\n}\n'
            f'nat: {{\n\tice_enforce_list = "{MEDIA_HOST}"\n\tignore_mdns = true\n}}\n'
        )
        (directory / "janus.transport.http.jcfg").write_text(
            "general: {\n"
            '\tjson = "plain"\n\tbase_path = "/janus"\n\thttp = true\n'
            f'\tport = {self.port}\n\tip = "127.0.0.1"\n\thttps = false\n'
            "}\n"
            "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
        )
        # no room from the file: the tests create theirs through the API
        (directory / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")

    @property
    def url(self) -> str:
        """The HTTP API's root, ``http://127.0.0.1:PORT/janus``."""
        return f"http://127.0.0.1:{self.port}/janus"

    def address(self, room: int | str, query: str = "") -> str:
        """The ``janus://`` address of ``room`` on this server (``query`` without ``?``)."""
        return f"janus://127.0.0.1:{self.port}/{room}" + (f"?{query}" if query else "")

    def start(self) -> None:
        """Start Janus and wait until its HTTP API answers."""
        log = open(self.directory / "janus.log", "ab")  # noqa: SIM115 (janus's output)
        command = [JANUS, "-C", str(self.directory / "janus.jcfg"), "-F", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/info", timeout=1) as reply:
                    if json.load(reply).get("janus") == "server_info":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"janus did not answer on {self.port}: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL Janus (a crash: every session, room and peer connection is gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """End Janus."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """What Janus wrote."""
        return (self.directory / "janus.log").read_text(errors="replace")

    def request(self, path: str, body: dict) -> dict:
        """POST one Janus API request (the transaction and secret added) and its reply."""
        body = {**body, "transaction": secrets.token_hex(6)}
        if self.api_secret:
            body["apisecret"] = self.api_secret
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            answer = json.load(reply)
        if answer.get("janus") == "error":
            raise RuntimeError(f"janus: {answer['error']}")
        return answer

    def videoroom(self, body: dict) -> dict:
        """One synchronous VideoRoom request (create, destroy, listparticipants...) on a
        session of its own; the plugin's reply data."""
        session = self.request("", {"janus": "create"})["data"]["id"]
        try:
            handle = self.request(
                f"/{session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
            )["data"]["id"]
            reply = self.request(f"/{session}/{handle}", {"janus": "message", "body": body})
            data = reply["plugindata"]["data"]
            if "error" in data:
                raise RuntimeError(f"videoroom: {data['error']}")
            return data
        finally:
            self.request(f"/{session}", {"janus": "destroy"})

    def wait_publishing(self, room: int, names: set[str]) -> None:
        """Wait until Janus counts each of ``names`` as publishing in ``room`` (its media
        is up), so that a watcher joining now is told of them."""
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            listed = self.videoroom({"request": "listparticipants", "room": room})
            if names <= {p["display"] for p in listed["participants"] if p.get("publisher")}:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{sorted(names)} not publishing in room {room}: {listed}")

    def create_room(self, room: int, **options: object) -> None:
        """Create VideoRoom ``room`` (VP8, up to 10 publishers) with ``options``."""
        body = {"request": "create", "room": room, "publishers": 10, "videocodec": "vp8"}
        self.videoroom({**body, **options})


class Publisher:
    """A participant publishing a clip's video (looped) to a room, in a process of its
    own (``tests/janus_publisher.py``): :meth:`leave` leaves the room, :meth:`kill`
    vanishes without a word."""

    def __init__(
        self,
        janus: Janus,
        room: int,
        name: str,
        clip: Path | None,
        pin: str = "",
        *,
        encrypted: bool = False,
    ) -> None:
        """``clip`` None: publish audio only (the camera is off); ``encrypted``: its VP8
        frames scrambled past their clear header, as end-to-end encryption leaves them."""
        command = [sys.executable, "-m", "tests.janus_publisher", janus.url, str(room), name]
        command += [str(clip or "-")]
        command += ["--ice-host", MEDIA_HOST, "--pin", pin]
        if clip is None:
            command.append("--audio-only")
        if encrypted:
            command.append("--encrypted")
        env = {**os.environ, "JANUS_API_SECRET": janus.api_secret or ""}
        self.name = name
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=ROOT
        )
        line = self.process.stdout.readline()
        if not line.startswith("publishing"):
            self.process.kill()
            raise RuntimeError(f"publisher {name} failed: {line}{self.process.stderr.read()}")
        #: the participant's Janus id
        self.id = int(line.split()[1])

    def leave(self) -> None:
        """Leave the room (SIGTERM: the publisher says ``leave`` and ends)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """End the publisher without a word."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class DataSubscriber:
    """A room participant's subscription to a feed's data channel, from an aiortc peer of
    the test, through Janus's API: every text message goes to :attr:`heard`. Its peer
    opens a data channel of its own, as ``janus.js`` does: Janus relays a publisher's data
    only to subscribers whose peer opened one."""

    def __init__(self, janus: Janus, room: int, feed: int) -> None:
        self.janus, self.room, self.feed = janus, room, feed
        #: the messages received, in order
        self.heard: list[str] = []
        #: set when the peer's own channel is open (Janus then relays to it)
        self.ready = asyncio.Event()

    async def __aenter__(self) -> DataSubscriber:
        self._http = aiohttp.ClientSession()
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            self._session = await JanusSession.create(
                self._http, self.janus.url, secret=self.janus.api_secret
            )
            await self._subscribe()
        except BaseException:
            await self._pc.close()
            await self._http.close()
            raise
        return self

    async def _subscribe(self) -> None:
        """Join as the feed's subscriber, answer with a data channel of the peer's own."""
        handle = await self._session.attach("janus.plugin.videoroom")
        join = {"request": "join", "ptype": "subscriber", "room": self.room}
        offer = (
            await self._session.message(handle, {**join, "streams": [{"feed": self.feed}]})
        ).jsep
        pc = self._pc

        @pc.on("datachannel")
        def on_channel(channel) -> None:  # Janus's, labelled with the feed's id
            channel.on("message", self.heard.append)

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
        own = pc.createDataChannel("JanusDataChannel")
        own.on("open", self.ready.set)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await self._session.message(handle, {"request": "start"}, answer)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pc.close()
        await self._session.close()
        await self._http.close()
