"""``janus://HOST[:PORT]/ROOM[?options]``: a Janus VideoRoom to watch, read and checked.

``janus://`` (or ``janus+http://``) reaches the HTTP API in plain HTTP (default port 8088),
``janus+https://`` over TLS (default port 8089). ``ROOM`` is the room's id: a number, or a
string for a Janus set to ``string_ids``. Query options: ``pin`` (the room's PIN),
``secret`` (the API secret of a Janus with ``api_secret``), ``token`` (a token of a Janus
with ``token_auth``), ``path`` (the API's path, default ``/janus``), ``name`` (the
watcher's display name, default ``lipforensics``) and ``announce`` (the display name of a
data-only publisher that tells the room of each alert, :mod:`.announcer`; default: none,
nothing is published). PIN, secret and token never appear in what is printed
(:func:`stream.sources.urls.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from errors import LipForensicsError
from stream.sources.urls import JANUS_SCHEMES, redact, split_url

#: the HTTP API's default port per scheme (Janus's own defaults).
DEFAULT_PORTS = {"janus": 8088, "janus+http": 8088, "janus+https": 8089}
#: the query options an address may carry.
OPTIONS = ("pin", "secret", "token", "path", "name", "announce")
#: the watcher's display name in the room unless ``name=`` says otherwise.
WATCHER_NAME = "lipforensics"


@dataclass(frozen=True, slots=True)
class JanusAddress:
    """A VideoRoom on a Janus server.

    Attributes:
        api: the HTTP API's root (``http://HOST:PORT/janus``).
        room: the room's id (an int unless it is not a number).
        pin, secret, token: the room's PIN, the API secret and token (None: not needed).
        name: the watcher's display name in the room.
        announce: the display name of the publisher that tells the room of alerts (None:
            nothing is published).
        shown: the address as given, with its secrets masked (for messages).
    """

    api: str
    room: int | str
    pin: str | None = None
    secret: str | None = None
    token: str | None = None
    name: str = WATCHER_NAME
    announce: str | None = None
    shown: str = ""

    def __str__(self) -> str:
        return self.shown


def parse_janus_url(url: str) -> JanusAddress:
    """The room that ``url`` names (see the module doc).

    Raises:
        LipForensicsError: not a ``janus://`` address, no host or room, an unknown option.
    """
    parts = split_url(url)
    scheme = parts.scheme.lower()
    shown = redact(url)
    expected = "expected janus://HOST[:PORT]/ROOM[?pin=...&secret=...&token=...]"
    if scheme not in JANUS_SCHEMES or not parts.hostname:
        raise LipForensicsError(f"not a Janus room address: {shown!r}: {expected}")
    room = unquote(parts.path.strip("/"))
    if not room or "/" in room:
        raise LipForensicsError(f"no room in {shown!r}: {expected}")
    if parts.username or parts.password:
        raise LipForensicsError(f"{shown!r}: give the secret as ?secret=..., not in the host")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise LipForensicsError(
            f"unknown option {unknown[0]!r} in {shown!r}: expected {', '.join(OPTIONS)}"
        )
    path = "/" + options.get("path", "/janus").strip("/")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port or DEFAULT_PORTS[scheme]
    web = "https" if scheme == "janus+https" else "http"
    return JanusAddress(
        api=f"{web}://{host}:{port}{path}",
        room=int(room) if room.isdigit() else room,
        pin=options.get("pin") or None,
        secret=options.get("secret") or None,
        token=options.get("token") or None,
        name=options.get("name") or WATCHER_NAME,
        announce=options.get("announce") or None,
        shown=shown,
    )
