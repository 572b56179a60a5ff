"""Watching a Janus VideoRoom: ``janus://`` addresses (secrets masked), and end to end with
Debian's janus (tests/janus_support.py), aiortc publishers of the demo clips and the demo
detector: one stream per participant, late joiners, leavers, a camera that is off, Janus
restarting."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from errors import LipForensicsError
from stream.detector import Detector
from stream.events import Alert, CallParticipant, Connection, Event, StreamStatus, Verdict
from stream.settings.pipeline import Settings
from stream.sources.open import open_source
from stream.sources.rooms import Room
from stream.sources.rooms.janus_address import parse_janus_url
from stream.sources.rooms.participant import UNDECODABLE
from stream.sources.urls import redact
from tests.janus_support import MEDIA_HOST, DataSubscriber, Janus, Publisher, require_janus
from tests.live_support import run
from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
ROOM = 1234


# ---- addresses ----


def test_a_room_address_names_the_api_the_room_and_its_secrets() -> None:
    plain = parse_janus_url("janus://sfu.example/1234")
    assert plain.api == "http://sfu.example:8088/janus" and plain.room == 1234
    assert (plain.pin, plain.secret, plain.token) == (None, None, None)
    tls = parse_janus_url("janus+https://sfu.example:443/lobby?pin=42&secret=s&token=t&path=/api")
    assert tls.api == "https://sfu.example:443/api" and tls.room == "lobby"
    assert (tls.pin, tls.secret, tls.token) == ("42", "s", "t")
    assert str(tls) == "janus+https://sfu.example:443/lobby?pin=***&secret=***&token=***&path=/api"
    assert parse_janus_url("janus://[::1]/7").api == "http://[::1]:8088/janus"
    assert plain.announce is None  # silent unless asked
    assert parse_janus_url("janus://h/7?announce=Deepfake%20alerts").announce == "Deepfake alerts"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("janus://sfu.example", "no room"),
        ("janus://sfu.example/a/b", "no room"),
        ("janus://sfu.example/1?pin=hunter2&colour=red", "unknown option 'colour'"),
        ("janus://admin:hunter2@sfu.example/1", "?secret="),
        ("janus:///1?pin=hunter2", "not a Janus room address"),
    ],
)
def test_a_bad_room_address_is_one_line_without_its_secrets(address: str, why: str) -> None:
    with pytest.raises(LipForensicsError, match=re.escape(why)) as raised:
        parse_janus_url(address)
    assert "hunter2" not in str(raised.value) and "\n" not in str(raised.value)


def test_secrets_in_a_query_are_masked() -> None:
    shown = redact("janus://h/1?PIN=1&secret=2;token=3&name=x#pin=4")
    assert shown == "janus://h/1?PIN=***&secret=***;token=***&name=x#pin=4"


def test_a_room_address_opens_a_room_named_after_the_room(narrow_weights) -> None:
    room = open_source("janus://127.0.0.1:1/lobby")
    assert isinstance(room, Room) and room.name == "lobby"
    assert open_source("janus://127.0.0.1:1/lobby", "front").name == "front"
    command = [sys.executable, "run_stream.py", "run", "janus://h/1?pin=hunter2&x=1"]
    command += ["--weights", str(narrow_weights)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown option 'x'")
    assert "hunter2" not in done.stderr and "pin=***" in done.stderr


# ---- a real room ----


@pytest.fixture(scope="module")
def detector():
    require_janus()
    from stream.server.whip import use_ice_hosts

    use_ice_hosts([MEDIA_HOST])  # the watcher's peers offer the address Janus uses
    found = Detector.load(WEIGHTS, backend="onnxruntime")
    yield found
    found.close()


@pytest.fixture
def janus(tmp_path):
    require_janus()
    server = Janus(tmp_path, api_secret="sesame")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def publishers():
    """Publishers started by a test; all gone at its end."""
    started: list[Publisher] = []
    yield started
    for publisher in started:
        publisher.kill()


class Watching:
    """A pipeline watching one room, and every event it sent so far."""

    def __init__(self, detector: Detector, address: str, **settings: object) -> None:
        self.pipeline = detector.pipeline(Settings.of(jsonl=None, **settings))
        self.events: list[Event] = []
        self._arrived = asyncio.Event()
        self._reading = asyncio.ensure_future(self._read(self.pipeline.subscribe()))
        self.room = open_source(address)
        self.pipeline.add(self.room)

    async def _read(self, events) -> None:
        async for event in events:
            self.events.append(event)
            self._arrived.set()

    async def until(self, done: Callable[[list[Event]], bool]) -> None:
        """Wait until ``done(events)``."""
        while not done(self.events):
            self._arrived.clear()
            await self._arrived.wait()

    def of(self, kind: type, stream: str) -> list:
        """The events of ``kind`` of ``stream``."""
        return [e for e in self.events if isinstance(e, kind) and e.stream == stream]

    def statuses(self, stream: str) -> list[StreamStatus]:
        return self.of(StreamStatus, stream)

    async def stop(self) -> None:
        await self.pipeline.stop()
        self._reading.cancel()


def scored(watching: Watching, stream: str, count: int = 1) -> Callable[[list[Event]], bool]:
    return lambda _: len(watching.of(Verdict, stream)) >= count


def ended(watching: Watching, stream: str) -> Callable[[list[Event]], bool]:
    return lambda _: any(s.status is Connection.ENDED for s in watching.statuses(stream))


def said(watching: Watching, stream: str, words: str) -> Callable[[list[Event]], bool]:
    return lambda _: any(words in s.detail for s in watching.statuses(stream))


@pytest.mark.slow
def test_every_participant_is_scored_late_joiners_too_and_a_leaver_ends(
    detector, janus, publishers
) -> None:
    janus.create_room(ROOM, pin="hunter2")
    for name, clip in (("alice", DEMO_GENUINE), ("Bob Smith", DEMO_MANIPULATED)):
        publishers.append(Publisher(janus, ROOM, name, clip, pin="hunter2"))
    janus.wait_publishing(ROOM, {"alice", "Bob Smith"})
    alice, bob, carol = f"{ROOM}/alice", f"{ROOM}/Bob-Smith", f"{ROOM}/carol"

    async def main() -> tuple[Watching, list[dict]]:
        watching = Watching(detector, janus.address(ROOM, "pin=hunter2&secret=sesame"))
        await watching.until(lambda _: watching.of(Alert, bob))
        bob_windows = len(watching.of(Verdict, bob))
        await watching.until(scored(watching, alice, bob_windows + 5))
        publishers.append(Publisher(janus, ROOM, "carol", DEMO_GENUINE, pin="hunter2"))
        await watching.until(scored(watching, carol))
        listed = janus.videoroom({"request": "listparticipants", "room": ROOM})["participants"]
        publishers[0].leave()  # alice
        await watching.until(ended(watching, alice))
        await watching.stop()
        return watching, listed

    watching, listed = run(main(), timeout=150)
    # without announce=, the watcher is in the room but publishes nothing
    assert sorted((p["display"], p["publisher"]) for p in listed) == [
        ("Bob Smith", True),
        ("alice", True),
        ("carol", True),
        ("lipforensics", False),
    ]
    assert not watching.of(Alert, alice) and not watching.of(Alert, carol)
    assert {str(v.level) for v in watching.of(Verdict, alice)} == {"clear"}
    alice_events = [e for e in watching.events if getattr(e, "stream", None) == alice]
    assert isinstance(alice_events[-1], StreamStatus) and "left the room" in alice_events[-1].detail
    assert alice_events[-1].status is Connection.ENDED
    who = watching.statuses(bob)[0].detail
    assert who.startswith(f"room {ROOM}, 'Bob Smith' (id {publishers[1].id}): receiving video")
    assert "400x300" in who
    # every event of a participant's stream says who it is, as typed fields
    bob_is = CallParticipant(str(ROOM), "Bob Smith", publishers[1].id)
    bob_events = [e for e in watching.events if getattr(e, "stream", None) == bob]
    assert {
        e.verdict.participant if isinstance(e, Alert) else e.participant for e in bob_events
    } == {bob_is}
    assert watching.of(Alert, bob)[0].to_dict()["participant"] == {
        "room": str(ROOM),
        "name": "Bob Smith",
        "feed": publishers[1].id,
    }
    assert all("participant" not in s.to_dict() for s in watching.statuses(str(ROOM)))
    room = watching.statuses(str(ROOM))
    assert room[0].status is Connection.CONNECTED and "2 publisher(s)" in room[0].detail
    assert room[-1].status is Connection.ENDED
    text = json.dumps([e.to_dict() for e in watching.events])
    assert "sesame" not in text and "hunter2" not in text


@pytest.mark.slow
def test_a_participant_without_video_has_a_state_of_its_own(detector, janus, publishers) -> None:
    janus.create_room(ROOM)
    publishers.append(Publisher(janus, ROOM, "dave", None))
    dave = f"{ROOM}/dave"

    async def main() -> Watching:
        watching = Watching(detector, janus.address(ROOM, "secret=sesame"))
        await watching.until(lambda _: watching.statuses(dave))
        publishers[0].leave()
        await watching.until(ended(watching, dave))
        await watching.stop()
        return watching

    watching = run(main(), timeout=60)
    first, last = watching.statuses(dave)[0], watching.statuses(dave)[-1]
    assert first.status is Connection.CONNECTED
    assert "camera off (publishes no video)" in first.detail
    assert last.status is Connection.ENDED and not watching.of(Verdict, dave)


@pytest.mark.slow
def test_encrypted_video_is_told_from_a_camera_that_stopped(
    detector, janus, publishers, caplog
) -> None:
    """Eve publishes VP8 scrambled past its clear header (end-to-end encrypted): packets
    arrive, nothing decodes, an ``error`` of its own (and not one decoder warning a
    frame). Frank is scored; stopped (SIGSTOP: no more packets), his camera is off, and
    back when he goes on."""
    janus.create_room(ROOM)
    for name, encrypted in (("eve", True), ("frank", False)):
        publishers.append(Publisher(janus, ROOM, name, DEMO_GENUINE, encrypted=encrypted))
    janus.wait_publishing(ROOM, {"eve", "frank"})
    eve, frank = f"{ROOM}/eve", f"{ROOM}/frank"

    async def main() -> tuple[Watching, list[tuple[str, CallParticipant, str]]]:
        watching = Watching(detector, janus.address(ROOM, "secret=sesame"))
        await watching.until(said(watching, eve, "cannot be decoded"))
        await watching.until(scored(watching, frank))
        listed = watching.room.participants()
        publishers[1].process.send_signal(signal.SIGSTOP)
        await watching.until(said(watching, frank, "camera off"))
        publishers[1].process.send_signal(signal.SIGCONT)
        await watching.until(said(watching, frank, "video back"))
        await watching.stop()
        return watching, listed

    watching, listed = run(main(), timeout=90)
    assert {stream: standing for stream, _, standing in listed} == {
        eve: "cannot decode its video",
        frank: "scored",
    }
    [eve_said] = [s for s in watching.statuses(eve) if s.status is not Connection.ENDED]
    assert eve_said.status is Connection.ERROR and not watching.of(Verdict, eve)
    who = f"room {ROOM}, 'eve' (id {publishers[0].id})"
    assert eve_said.detail == f"{who}: {UNDECODABLE.format(seconds=2)}"
    frank_said = [(s.status, s.detail.split(": ")[1]) for s in watching.statuses(frank)]
    assert frank_said[1:3] == [
        (Connection.CONNECTED, "camera off (no video for 2 s)"),
        (Connection.CONNECTED, "video back, 400x300"),
    ]
    warned = [r for r in caplog.records if "failed to decode" in r.getMessage()]
    assert len(warned) <= 2  # once a minute at most, over a run of at most 90 s


@pytest.mark.slow
def test_janus_restarting_ends_the_streams_and_the_watcher_joins_again(
    detector, janus, publishers
) -> None:
    janus.create_room(ROOM)
    publishers.append(Publisher(janus, ROOM, "erin", DEMO_GENUINE))
    erin = f"{ROOM}/erin"

    async def main() -> Watching:
        watching = Watching(detector, janus.address(ROOM, "secret=sesame"))
        await watching.until(scored(watching, erin))
        janus.kill()
        publishers.pop().kill()
        await watching.until(ended(watching, erin))
        down = len(watching.events)
        await watching.until(
            lambda events: any(
                isinstance(e, StreamStatus) and e.status is Connection.RECONNECTING
                for e in events[down:]
            )
        )
        janus.start()  # a restart: the room created by the API is gone, and made again
        janus.create_room(ROOM)
        publishers.append(Publisher(janus, ROOM, "erin", DEMO_GENUINE))
        before = len(watching.of(Verdict, erin))
        await watching.until(scored(watching, erin, before + 1))
        await watching.stop()
        return watching

    watching = run(main(), timeout=150)
    room = [s.status for s in watching.statuses(str(ROOM))]
    assert room.count(Connection.CONNECTED) == 2 and Connection.RECONNECTING in room
    assert watching.room.joins == 2
    erin_statuses = [s.status for s in watching.statuses(erin)]
    assert erin_statuses.count(Connection.ENDED) == 2  # one stream per join, both ended


@pytest.mark.slow
def test_a_participant_over_the_cap_says_so_and_is_scored_when_another_leaves(
    detector, janus, publishers
) -> None:
    """``max_participants`` = 1, two publishers: one is scored, the other's stream is an
    ``error`` that says the node is full; the scored one leaves, the other is scored."""
    janus.create_room(ROOM)
    for name in ("alice", "bob"):
        publishers.append(Publisher(janus, ROOM, name, DEMO_GENUINE))
    janus.wait_publishing(ROOM, {"alice", "bob"})
    streams = {f"{ROOM}/alice": publishers[0], f"{ROOM}/bob": publishers[1]}

    def full(watching: Watching, stream: str) -> bool:
        return any(
            s.status is Connection.ERROR and "the node is full" in s.detail
            for s in watching.statuses(stream)
        )

    async def main() -> tuple[Watching, str, str]:
        watching = Watching(detector, janus.address(ROOM, "secret=sesame"), max_participants=1)
        await watching.until(lambda _: any(watching.of(Verdict, s) for s in streams))
        first = next(s for s in streams if watching.of(Verdict, s))
        second = next(s for s in streams if s != first)
        await watching.until(lambda _: full(watching, second))
        await asyncio.sleep(2.0)  # the waiting one stays unscored while the first is
        assert not watching.of(Verdict, second)
        assert watching.pipeline.participant_slots.waiting == 1
        # waiting for capacity is the node's limit, no failure of the participant's stream
        assert watching.pipeline.failures == []
        assert watching.pipeline.workers[second].held_back == (
            "the node is full (it scores 1 stream(s) at most)"
        )
        streams[first].leave()
        await watching.until(ended(watching, first))
        await watching.until(scored(watching, second))
        await watching.stop()
        return watching, first, second

    watching, first, second = run(main(), timeout=150)
    waiting = next(s for s in watching.statuses(second) if s.status is Connection.ERROR)
    assert waiting.detail == (
        f"room {ROOM}, {second.split('/')[1]!r} (id {streams[second].id}): not scored: the node "
        "is full (it scores 1 stream(s) at most); scored as soon as one ends"
    )
    assert waiting.participant == CallParticipant(
        str(ROOM), second.split("/")[1], streams[second].id
    )
    assert not any(s.status is Connection.ERROR for s in watching.statuses(first))
    back = watching.statuses(second)[watching.statuses(second).index(waiting) + 1]
    assert back.status is Connection.CONNECTED and "receiving video" in back.detail
    assert watching.pipeline.participant_slots.taken == 0  # every slot given back


@pytest.mark.slow
def test_serve_watches_a_room_added_over_http_within_the_nodes_stream_cap(
    janus, publishers
) -> None:
    """``serve`` with ``max_streams`` = 1: a room added by ``POST /rooms`` scores one of
    its two publishers and lists the other as waiting; that one slot is the node's, so a
    WHIP offer gets 503; ``DELETE /rooms/NAME`` leaves the room and frees the slot."""
    import aiohttp

    from engines.backends import TorchBackend
    from stream.server.whip import use_ice_hosts
    from tests.live_support import narrow_model
    from tests.server_support import AUTH, SDP_HEADERS, make_offer, served

    janus.create_room(ROOM)
    for name in ("alice", "bob"):
        publishers.append(Publisher(janus, ROOM, name, DEMO_GENUINE))
    janus.wait_publishing(ROOM, {"alice", "bob"})
    room = {"name": "lobby", "address": janus.address(ROOM, "secret=sesame")}

    async def main() -> tuple[dict, int, int, dict]:
        backend = TorchBackend(narrow_model())
        async with (
            served(backend, server={"max_streams": 1}) as (server, _),
            aiohttp.ClientSession() as http,
        ):
            use_ice_hosts([MEDIA_HOST])  # the room's peers offer the address Janus uses
            async with http.post(server.url + "/rooms", json=room, headers=AUTH) as reply:
                assert reply.status == 201, await reply.text()
            while True:
                async with http.get(server.url + "/rooms", headers=AUTH) as reply:
                    listing = await reply.json()
                standing = sorted(p["standing"] for p in listing["rooms"][0]["participants"])
                if standing == ["scored", "waiting for a stream slot"]:
                    break
                await asyncio.sleep(0.2)
            pc, offer = await make_offer("video")
            async with http.post(server.url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                whip = reply.status
            await pc.close()
            async with http.delete(server.url + "/rooms/lobby", headers=AUTH) as reply:
                removed = reply.status
            async with http.get(server.url + "/rooms", headers=AUTH) as reply:
                after = await reply.json()
        return listing, whip, removed, after

    listing, whip, removed, after = run(main(), timeout=90)
    entry = listing["rooms"][0]
    assert entry["name"] == "lobby" and entry["status"] == "connected"
    assert entry["address"].endswith(f"/{ROOM}?secret=***")
    ids = {p.name: p.id for p in publishers}
    assert sorted((p["stream"], p["room"], p["feed"]) for p in entry["participants"]) == [
        (f"lobby/{name}", "lobby", ids[name]) for name in ("alice", "bob")
    ]
    assert listing["streams"] == {"taken": 1, "limit": 1, "waiting": 1}
    assert whip == 503 and removed == 200
    assert after == {"rooms": [], "streams": {"taken": 0, "limit": 1, "waiting": 0}}


@pytest.mark.slow
def test_the_room_hears_each_alert_from_a_data_only_publisher_when_asked(
    detector, janus, publishers
) -> None:
    """``announce=NAME``: the watcher also publishes a data channel as NAME (nothing
    else), and each alert of a participant goes out on it as one JSON message; a room
    participant subscribed to it (an aiortc peer of the test) receives Bob's."""
    janus.create_room(ROOM)
    bob = f"{ROOM}/Bob-Smith"

    async def main() -> tuple[Watching, list[str], list[str], list[str]]:
        address = janus.address(ROOM, "secret=sesame&announce=Deepfake%20alerts")
        watching = Watching(detector, address)
        await watching.until(lambda _: watching.room.announcer is not None)
        feed = watching.room.announcer.id
        await asyncio.to_thread(janus.wait_publishing, ROOM, {"Deepfake alerts"})
        async with DataSubscriber(janus, ROOM, feed) as subscriber:
            await subscriber.ready.wait()
            publishers.append(Publisher(janus, ROOM, "Bob Smith", DEMO_MANIPULATED))
            await watching.until(lambda _: watching.of(Alert, bob))
            while not subscriber.heard:
                await asyncio.sleep(0.05)
            listed = janus.videoroom({"request": "listparticipants", "room": ROOM})
        await watching.stop()
        publishing = [p["display"] for p in listed["participants"] if p.get("publisher")]
        return watching, publishing, subscriber.heard

    watching, publishing, heard = run(main(), timeout=90)
    assert sorted(publishing) == ["Bob Smith", "Deepfake alerts"]
    alert = watching.of(Alert, bob)[0]
    assert json.loads(heard[0]) == {
        "level": "alert",
        "participant": {"room": str(ROOM), "name": "Bob Smith", "feed": publishers[0].id},
        "time": alert.verdict.wall_time,
        "id": alert.id,
    }
    assert not watching.statuses(f"{ROOM}/Deepfake-alerts")  # not watched as a participant
    joined = watching.statuses(str(ROOM))[0]
    assert joined.status is Connection.CONNECTED
    assert "announcing alerts as 'Deepfake alerts'" in joined.detail


@pytest.mark.slow
def test_run_exits_0_when_a_participant_only_waited_for_a_stream_slot(
    janus, publishers, narrow_weights, tmp_path
) -> None:
    """``run janus://... --max-participants 1`` on a room of two, stopped by SIGTERM while
    one participant still waits: the node's limit is no failure (exit 0), and one
    ``warning:`` line names the participant that was never scored and why."""
    janus.create_room(ROOM)
    for name in ("alice", "bob"):
        publishers.append(Publisher(janus, ROOM, name, DEMO_GENUINE))
    janus.wait_publishing(ROOM, {"alice", "bob"})
    command = [sys.executable, "run_stream.py", "run", janus.address(ROOM, "secret=sesame")]
    command += ["--weights", str(narrow_weights), "--backend", "onnxruntime"]
    command += ["--max-participants", "1"]
    env = {**os.environ, "LIPFORENSICS_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events: list[dict] = []
    try:
        for line in process.stdout:
            events.append(json.loads(line))
            kinds = {(e["type"], e.get("status")) for e in events}
            if ("verdict", None) in kinds and ("status", "error") in kinds:
                process.send_signal(signal.SIGTERM)
                break
        events += [json.loads(line) for line in process.stdout]
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    waiting = next(e for e in events if e.get("status") == "error")
    assert "the node is full" in waiting["detail"]
    assert not any(e["type"] == "verdict" for e in events if e["stream"] == waiting["stream"])
    warnings = [line for line in process.stderr.read().splitlines() if "warning:" in line]
    assert warnings == [
        f"warning: {waiting['stream']}: never scored: the node is full (it scores 1 stream(s) "
        "at most) (--max-participants)"
    ]
