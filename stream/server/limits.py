"""What one client may hold of the HTTP server, and how its bad requests are logged.

aiohttp parses requests with bounded lines and header counts and answers a request beyond
them with 400; here that becomes one short log line (the error's kind and the peer's
address, never the sender's text) instead of a traceback. A connection must send a whole
request head within ``idle_timeout`` seconds of opening, and may then sit idle between
requests that long again (aiohttp's keep-alive timer, which also runs before the first
request), so a slowloris client that trickles headers or sits silent is dropped.

At most ``max_connections`` are open at once. A connection that arrives when they are all
taken closes the oldest open one that has not yet carried the bearer token (idle sockets
opened by anyone, from one address or many, cannot lock a token holder out); only when
every open connection has shown the token does the newcomer get ``503`` and close.

The streams the node watches are counted by :class:`~stream.sources.slots.StreamSlots`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

#: the logger of refused requests (aiohttp's own server logger is left alone).
LOG = logging.getLogger("lipforensics.server")
#: the longest request line and header line accepted, bytes (aiohttp's default).
MAX_LINE = 8190
#: the most header lines in a request.
MAX_HEADERS = 64
#: what a connection over the cap is told before it is closed.
TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Connection: close\r\nRetry-After: 5\r\n\r\ntoo many connections\n"
)


class _QuietBadRequests(logging.LoggerAdapter):
    """aiohttp's request-handler logger: a malformed request is one warning line; anything
    else (a bug in a handler) keeps its traceback."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            peer = args[0] if args else "?"
            self.logger.warning(
                "refused a malformed request from %s: %s %s",
                peer,
                exc_info.code,
                type(exc_info).__name__,
            )
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def handler_options(idle_timeout: float) -> dict[str, Any]:
    """Keyword arguments of ``web.AppRunner`` for aiohttp's request handlers."""
    return {
        "keepalive_timeout": idle_timeout,
        "max_line_size": MAX_LINE,
        "max_field_size": MAX_LINE,
        "max_headers": MAX_HEADERS,
        "logger": _QuietBadRequests(LOG, {}),
    }


class _Refused(asyncio.Protocol):
    """A connection over the cap: told 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(TOO_MANY)
        transport.close()


class ConnectionCap:
    """The listening socket's protocol factory: ``server``'s handler for each connection
    while fewer than ``limit`` are open; at the limit, the oldest open connection that has
    not shown the token (its transport is not in ``trusted``) is closed to make room, and
    only when there is none does the newcomer get :class:`_Refused`.

    Attributes:
        refused: connections turned away so far.
        evicted: connections closed to make room so far.
    """

    def __init__(
        self,
        server: web.Server,
        limit: int,
        trusted: weakref.WeakSet[asyncio.BaseTransport] | None = None,
    ) -> None:
        self.server, self.limit = server, limit
        self.trusted = trusted if trusted is not None else weakref.WeakSet()
        self.refused = self.evicted = 0

    def __call__(self) -> asyncio.BaseProtocol:
        open_now = [handler for handler in self.server.connections if _is_open(handler)]
        if len(open_now) >= self.limit:
            stranger = next((h for h in open_now if h.transport not in self.trusted), None)
            if stranger is None:
                self.refused += 1
                return _Refused()
            self.evicted += 1
            stranger.force_close()
        return self.server()


def _is_open(handler: RequestHandler) -> bool:
    """The connection of ``handler`` is neither closed nor closing."""
    return handler.transport is not None and not handler.transport.is_closing()
