"""The pages of ``serve``: static files that hold no data.

``/dashboard`` follows every stream (``/state``, then ``/events``); ``/publish`` makes the
browser a WHIP publisher of its camera or a shared screen, tab or window, and shows the
verdicts of its own stream. The pages, their scripts and styles are served without the
token; each page asks for the token (or takes it from the URL fragment, which never
reaches the server) and sends it as a bearer header to the data routes, which refuse
anyone without it. A strict Content-Security-Policy allows only this server's own script,
style and connections (images also from ``blob:``, for alert crops fetched with the token),
and no framing; the scripts set text from the server only as ``textContent``, so a stream
name cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]

ASSETS = Path(__file__).with_name("assets")
#: file suffix -> content type.
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
#: served path -> file in :data:`ASSETS`.
FILES = {
    "/dashboard": "dashboard.html",
    "/dashboard.js": "dashboard.js",
    "/dashboard.css": "dashboard.css",
    "/publish": "publish.html",
    "/publish.js": "publish.js",
    "/live.js": "live.js",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob:; media-src 'self' blob: mediastream:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> Handler:
    """The response for one file of :data:`ASSETS` (read at start, served from memory)."""
    body = (ASSETS / name).read_bytes()
    content_type = TYPES[Path(name).suffix]

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS
        )

    return handler


def page_paths() -> dict[str, Handler]:
    """``GET`` path -> handler for every page and its files."""
    return {path: asset(name) for path, name in FILES.items()}
