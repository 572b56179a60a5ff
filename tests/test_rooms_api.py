"""Call rooms under ``serve``: the node's stream slots and their line, the ``participant``
of a room's events, and ``/rooms`` on a real server (no Janus needed: a room at an address
that answers nothing is watched all the same, and says so; tests/test_janus.py watches real
ones)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import pytest

from engines.backends import TorchBackend
from stream.alerts.policy import Level
from stream.events import CallParticipant, Connection, FaceEnded, StreamStatus, Verdict
from stream.sources.slots import StreamSlots
from tests.live_support import narrow_model, run
from tests.server_support import AUTH, served


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


def test_a_slot_given_back_goes_to_the_first_in_line_and_a_cancelled_wait_leaves_it() -> None:
    async def main() -> list[object]:
        slots = StreamSlots(1)
        assert slots.take()
        first = asyncio.ensure_future(slots.wait())
        second = asyncio.ensure_future(slots.wait())
        third = asyncio.ensure_future(slots.wait())
        await asyncio.sleep(0)
        seen: list[object] = [slots.waiting]
        second.cancel()
        slots.give_back()  # to the first in line, not to whoever asks next
        seen.append(slots.take())
        await first
        seen += [slots.taken, slots.waiting]
        slots.give_back()  # the second left the line: the third gets it
        await third
        seen += [slots.taken, second.cancelled()]
        slots.give_back()
        seen.append(slots.taken)
        return seen

    assert run(main()) == [3, False, 1, 1, 1, True, 0]


def test_a_participants_events_carry_who_it_is_and_other_streams_do_not() -> None:
    who = CallParticipant("lobby", "Bob Smith", 5107609986375902)
    shape = {"room": "lobby", "name": "Bob Smith", "feed": 5107609986375902}
    stream = "lobby/Bob-Smith"
    for event in (
        StreamStatus(stream, Connection.CONNECTED, "in"),
        Verdict(stream, 0, (1.0, 2.0), 3.0, 0.9, Level.CLEAR, 1.0),
        FaceEnded(stream, 0, 2.0),
    ):
        assert "participant" not in event.to_dict()
        assert replace(event, participant=who).to_dict()["participant"] == shape


def test_rooms_are_added_listed_and_removed_behind_the_token(backend) -> None:
    """401 without the token; 400 with one line for a bad body, name or address (secrets
    masked); 201 and the room's entry; 409 for a name taken; the listing masks the
    address; DELETE leaves the room (404 when not watched)."""
    hidden = "janus://127.0.0.1:1/1234?pin=hunter2&secret=sesame"

    async def main() -> dict[str, object]:
        async with served(backend) as (server, _), aiohttp.ClientSession() as http:
            url, found = server.url + "/rooms", {}

            async def call(method: str, path: str = "", **options: object) -> tuple[int, str]:
                async with http.request(method, url + path, **options) as reply:
                    return reply.status, await reply.text()

            found["anonymous"] = await call("POST", json={"name": "a", "address": hidden})
            found["anonymous list"] = await call("GET")
            found["not json"] = await call("POST", data="{", headers=AUTH)
            found["bad name"] = await call(
                "POST", json={"name": "a/b", "address": hidden}, headers=AUTH
            )
            found["bad address"] = await call(
                "POST", json={"name": "a", "address": hidden + "&colour=red"}, headers=AUTH
            )
            found["added"] = await call("POST", json={"name": "a", "address": hidden}, headers=AUTH)
            found["again"] = await call("POST", json={"name": "a", "address": hidden}, headers=AUTH)
            await asyncio.sleep(0.5)  # the room tries to join: nothing answers there
            found["list"] = await call("GET", headers=AUTH)
            found["removed"] = await call("DELETE", "/a", headers=AUTH)
            found["gone"] = await call("DELETE", "/a", headers=AUTH)
            found["empty"] = await call("GET", headers=AUTH)
            return found

    found = run(main())
    assert found["anonymous"][0] == found["anonymous list"][0] == 401
    assert found["not json"] == (
        400,
        'the body must be JSON: {"name": "...", "address": "janus://..."}\n',
    )
    assert found["bad name"][0] == 400 and "room name 'a/b' must be" in found["bad name"][1]
    status, text = found["bad address"]
    assert status == 400 and text.startswith("unknown option 'colour'") and text.count("\n") == 1
    assert found["added"][0] == 201 and found["again"] == (409, "room 'a' is already watched\n")
    assert found["list"][0] == 200 and '"name": "a"' in found["list"][1]
    assert "pin=***&secret=***" in found["list"][1]
    assert '"status": "error"' in found["list"][1] or '"status": "reconnecting"' in found["list"][1]
    assert '"streams": {"taken": 0, "limit": 16, "waiting": 0}' in found["list"][1]
    assert found["removed"][0] == 200 and found["gone"] == (404, "room 'a' is not watched\n")
    assert found["empty"] == (
        200,
        '{"rooms": [], "streams": {"taken": 0, "limit": 16, "waiting": 0}}',
    )
    for _, text in found.values():
        assert "hunter2" not in text and "sesame" not in text
