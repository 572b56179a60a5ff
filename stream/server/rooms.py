"""The call rooms ``serve`` watches: those of the ``[rooms]`` table from the start, and
those added and removed while it runs, behind the token:

- ``GET /rooms``: every room (name, address with its secrets masked, the room's own
  status and detail) with its participants (stream, display name, feed id, and where each
  stands: ``scored``, ``waiting for a stream slot``, ...), and the node's stream slots
  (``taken``, ``limit``, ``waiting``).
- ``POST /rooms`` with ``{"name": "lobby", "address": "janus://HOST[:PORT]/ROOM[?...]"}``:
  201 and the room's entry; 400 with one line for a bad body, name or address; 409 for a
  name already watched.
- ``DELETE /rooms/NAME``: leaves the room (every participant's stream ends, its slots are
  given back), 200 and the room's last entry; 404 for a room not watched.

A room's participants take their stream slots from the node's ``max_streams``, shared with
the WHIP sessions (:class:`~stream.sources.slots.StreamSlots`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from contextlib import suppress

from aiohttp import web

from errors import LipForensicsError
from stream.sources.rooms import Room
from stream.sources.rooms.janus_address import JanusAddress, parse_janus_url
from stream.sources.slots import StreamSlots

#: a room's name: the prefix of its participants' stream ids.
ROOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

AddRoom = Callable[[Room, StreamSlots], asyncio.Task[None]]


class RoomTaken(LipForensicsError):
    """A room of that name is already watched."""


class WatchedRooms:
    """The rooms this server watches (see the module doc).

    Args:
        add_room: starts watching a room with the node's stream slots
            (:meth:`stream.pipeline.Pipeline.add_room`).
        streams: the node's stream slots.
    """

    def __init__(self, add_room: AddRoom, streams: StreamSlots) -> None:
        self._add_room, self.streams = add_room, streams
        self.rooms: dict[str, tuple[Room, asyncio.Task[None]]] = {}

    def add(self, name: str, address: str) -> Room:
        """Start watching the room at ``address`` under ``name``.

        Raises:
            LipForensicsError: a bad name or address (one line, secrets masked).
            RoomTaken: a room of that name is already watched.
        """
        checked = check_room(name, address)
        if name in self.rooms:
            raise RoomTaken(f"room {name!r} is already watched")
        from stream.sources.rooms.janus_room import JanusRoom  # aiortc: loaded when needed

        room = JanusRoom(checked, name)
        self.rooms[name] = (room, self._add_room(room, self.streams))
        return room

    async def remove(self, name: str) -> Room | None:
        """Leave the room ``name``: its participants' streams end; None if not watched."""
        found = self.rooms.pop(name, None)
        if found is None:
            return None
        room, task = found
        await room.close()
        with suppress(asyncio.CancelledError):
            await task
        return room

    def listing(self) -> dict[str, object]:
        """Every room with its participants, and the node's stream slots (JSON-ready)."""
        return {
            "rooms": [entry(room) for room, _ in self.rooms.values()],
            "streams": {
                "taken": self.streams.taken,
                "limit": self.streams.limit,
                "waiting": self.streams.waiting,
            },
        }

    async def get(self, request: web.Request) -> web.Response:
        """``GET /rooms``."""
        return web.json_response(self.listing(), headers={"Cache-Control": "no-store"})

    async def post(self, request: web.Request) -> web.Response:
        """``POST /rooms``: add a room (see the module doc)."""
        try:
            body = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError):
            body = None
        if not (
            isinstance(body, dict)
            and isinstance(body.get("name"), str)
            and isinstance(body.get("address"), str)
        ):
            return _line(400, 'the body must be JSON: {"name": "...", "address": "janus://..."}')
        try:
            room = self.add(body["name"], body["address"])
        except RoomTaken as error:
            return _line(409, str(error))
        except LipForensicsError as error:
            return _line(400, str(error))
        return web.json_response(entry(room), status=201)

    async def delete(self, request: web.Request) -> web.Response:
        """``DELETE /rooms/{name}``: leave a room (see the module doc)."""
        name = request.match_info["name"]
        room = await self.remove(name)
        if room is None:
            return _line(404, f"room {name[:80]!r} is not watched")
        return web.json_response(entry(room))


def check_room(name: str, address: str) -> JanusAddress:
    """The room at ``address``, to be watched under ``name``.

    Raises:
        LipForensicsError: a name that cannot prefix stream ids, or a bad address (one
            line, secrets masked).
    """
    if not ROOM_NAME.fullmatch(name):
        raise LipForensicsError(
            f"room name {name[:80]!r} must be 1 to 64 letters, digits, '.', '_' or '-'"
        )
    return parse_janus_url(address)


def entry(room: Room) -> dict[str, object]:
    """One room as ``GET /rooms`` lists it."""
    state = room.state
    return {
        "name": room.name,
        "address": room.shown,
        "status": str(state.status) if state is not None else "starting",
        "detail": state.detail if state is not None else "",
        "participants": [
            {"stream": stream, **who.to_dict(), "standing": standing}
            for stream, who, standing in room.participants()
        ],
    }


def _line(status: int, text: str) -> web.Response:
    """A plain-text answer of one line."""
    return web.Response(status=status, text=text.replace("\n", " ") + "\n")
