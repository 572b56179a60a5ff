"""The dashboard of ``serve``: one static page (``/dashboard``) that follows ``/events``.

The page, its script and its style hold no data, so they are served without the token;
the page asks for the token and sends it as a bearer header to ``/events``, which refuses
anyone without it. A strict Content-Security-Policy allows only this server's own script,
style and connections, and no framing; the script sets text from the server only as
``textContent``, so a stream name cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]

ASSETS = Path(__file__).with_name("assets")
#: served file name -> content type.
FILES = {
    "dashboard.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> Handler:
    """The response for one of :data:`FILES` (read at start, served from memory)."""
    body = (ASSETS / name).read_bytes()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=FILES[name], charset="utf-8", headers=SECURITY_HEADERS
        )

    return handler


def dashboard_paths() -> dict[str, Handler]:
    """``GET`` path -> handler for the page and its two files."""
    return {
        "/dashboard": asset("dashboard.html"),
        "/dashboard.js": asset("dashboard.js"),
        "/dashboard.css": asset("dashboard.css"),
    }
