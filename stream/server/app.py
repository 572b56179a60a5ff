"""The HTTP surface of ``serve``: WHIP ingest, Prometheus metrics, health, live events, the
live state for a page opened late, alert crops, and the pages (``stream/server/pages.py``).

The routes are a plain list (:func:`routes`): method, path, handler and whether the bearer
token is required. Tokens are compared in constant time (digests of equal length) and
never logged. CORS answers only the origins configured. ``/events`` streams every pipeline
event as Server-Sent Events (one JSON object per ``data:`` line, a comment line as
heartbeat); ``/healthz`` answers 200 when the pipeline is ``ok`` and 503 when degraded.
``/metrics`` is open unless ``protect_metrics``, but only a token holder sees the series of
each stream; anyone else gets the node's totals (:mod:`stream.server.public_metrics`). A
connection that carried the token is never closed to make room for another
(:class:`~stream.server.limits.ConnectionCap`).
``/state`` is the JSON snapshot of :class:`~stream.server.state.LiveState` (streams, faces,
recent alerts), ``/alerts/{id}/crops.png`` the mouth crops of an alert's window and
``/thumbnail.png?stream=S&face=N`` a face's latest picture, all behind the token.
``/rooms`` lists, adds and removes the call rooms watched (:mod:`stream.server.rooms`),
behind the token; their participants take the same stream slots as WHIP sessions.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from errors import LipForensicsError
from stream.alerts.crops import AlertCrops
from stream.events import Event, StreamStatus
from stream.faces.thumbnails import FaceThumbnails
from stream.health.node import public_report
from stream.images import crop_strip, png_bytes
from stream.server.limits import ConnectionCap, handler_options
from stream.server.pages import page_paths
from stream.server.public_metrics import public_text
from stream.server.rooms import WatchedRooms
from stream.server.state import LiveState
from stream.server.whip import WhipEndpoint
from stream.settings.server import ServerSettings
from stream.sources.base import Source
from stream.sources.rooms import Room
from stream.sources.slots import StreamSlots

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: where the application keeps its WHIP endpoint.
WHIP = web.AppKey("whip", WhipEndpoint)
#: where the application keeps the call rooms it watches.
ROOMS = web.AppKey("rooms", WatchedRooms)
#: connections (their transports) that carried the token.
Trusted = weakref.WeakSet[asyncio.BaseTransport]
TRUSTED = web.AppKey("trusted", Trusted)


class ServedPipeline(Protocol):
    """What the server needs of :class:`stream.pipeline.Pipeline`."""

    alert_crops: AlertCrops
    thumbnails: FaceThumbnails

    @property
    def thresholds(self) -> dict[str, float]: ...

    def add_source(self, source: Source) -> object: ...

    def add_room(self, room: Room, streams: StreamSlots | None = None) -> asyncio.Task[None]: ...

    def emit(self, event: StreamStatus) -> None: ...

    def subscribe(self) -> AsyncIterator[Event]: ...

    def metrics_text(self) -> bytes: ...

    def health(self) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: ``method`` on ``path`` is answered by ``handler``; ``auth`` = the
    bearer token is required."""

    method: str
    path: str
    handler: Handler
    auth: bool


def routes(
    pipeline: ServedPipeline,
    whip: WhipEndpoint,
    settings: ServerSettings,
    closing: asyncio.Event,
    state: LiveState,
    rooms: WatchedRooms,
) -> list[Route]:
    """The whole HTTP surface, at a glance (``closing`` is set when the server shuts down;
    ``state`` follows the pipeline's events)."""
    return [
        Route("POST", "/whip", whip.publish, auth=True),
        Route("OPTIONS", "/whip", whip.options, auth=False),
        Route("DELETE", "/whip/{session}", whip.end, auth=True),
        Route("OPTIONS", "/whip/{session}", whip.options, auth=False),
        Route("GET", "/events", event_stream(pipeline, settings.heartbeat, closing), auth=True),
        Route("OPTIONS", "/events", preflight("OPTIONS, GET"), auth=False),
        Route("GET", "/state", snapshot(state), auth=True),
        Route("OPTIONS", "/state", preflight("OPTIONS, GET"), auth=False),
        Route("GET", "/alerts/{alert}/crops.png", alert_crops(pipeline.alert_crops), auth=True),
        Route("OPTIONS", "/alerts/{alert}/crops.png", preflight("OPTIONS, GET"), auth=False),
        Route("GET", "/thumbnail.png", thumbnail(pipeline.thumbnails), auth=True),
        Route("OPTIONS", "/thumbnail.png", preflight("OPTIONS, GET"), auth=False),
        Route("GET", "/rooms", rooms.get, auth=True),
        Route("POST", "/rooms", rooms.post, auth=True),
        Route("OPTIONS", "/rooms", preflight("OPTIONS, GET, POST"), auth=False),
        Route("DELETE", "/rooms/{name}", rooms.delete, auth=True),
        Route("OPTIONS", "/rooms/{name}", preflight("OPTIONS, DELETE"), auth=False),
        Route(
            "GET",
            "/metrics",
            metrics(pipeline, whip, settings.token),
            auth=settings.protect_metrics,
        ),
        Route("GET", "/healthz", health(pipeline, settings.token), auth=False),
        *(Route("GET", path, page, auth=False) for path, page in page_paths().items()),
    ]


def build_app(
    pipeline: ServedPipeline, settings: ServerSettings, streams: StreamSlots | None = None
) -> web.Application:
    """The aiohttp application: the :func:`routes`, token checks, CORS; event streams and
    WHIP sessions are ended when the application shuts down. ``streams``: the node's
    stream slots, for WHIP sessions and call rooms (default: ``max_streams`` of its own)."""
    streams = streams or StreamSlots(settings.max_streams)
    whip = WhipEndpoint(
        pipeline.add_source, on_status=pipeline.emit, settings=settings.whip, streams=streams
    )
    rooms = WatchedRooms(pipeline.add_room, streams)
    app = web.Application(
        middlewares=[cors(settings.cors_origins)], client_max_size=settings.whip.max_body
    )
    closing = asyncio.Event()
    state = LiveState(pipeline.thresholds)
    app.cleanup_ctx.append(follow(pipeline, state))
    trusted: Trusted = weakref.WeakSet()
    for route in routes(pipeline, whip, settings, closing, state, rooms):
        handler = route.handler
        if route.auth:
            handler = require_token(settings.token, handler, trusted)
        app.router.add_route(route.method, route.path, handler)
    app[WHIP] = whip
    app[ROOMS] = rooms
    app[TRUSTED] = trusted

    async def shut_down(_app: web.Application) -> None:
        closing.set()
        await whip.close()

    app.on_shutdown.append(shut_down)
    return app


def require_token(token: str, handler: Handler, trusted: Trusted | None = None) -> Handler:
    """``handler`` behind ``Authorization: Bearer <token>``; anything else gets 401. The
    connection of a request with the token joins ``trusted``."""
    expected = _digest(token)

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _has_token(request, expected):
            return web.Response(
                status=401,
                text="a valid bearer token is required\n",
                headers={"WWW-Authenticate": 'Bearer realm="lipforensics"'},
            )
        if trusted is not None and request.transport is not None:
            trusted.add(request.transport)
        return await handler(request)

    return guarded


def _has_token(request: web.Request, expected: bytes) -> bool:
    """The request carries ``Authorization: Bearer`` with the token whose digest is
    ``expected`` (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return hmac.compare_digest(_digest(given.strip()), expected) and scheme.lower() == "bearer"


def _digest(text: str) -> bytes:
    """A fixed-length digest, so that the comparison takes the same time for any length."""
    return hashlib.sha256(text.encode("utf-8", "replace")).digest()


def cors(origins: tuple[str, ...]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware that lets the browser ``origins`` (exact matches) call the API."""
    allowed = frozenset(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin not in allowed:
            return await handler(request)
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "OPTIONS, POST, DELETE, GET",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Expose-Headers": "Location, Retry-After, X-Stream-Id",
            "Vary": "Origin",
        }
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    return middleware


def event_stream(pipeline: ServedPipeline, heartbeat: float, closing: asyncio.Event) -> Handler:
    """``GET /events``: the pipeline's events as Server-Sent Events until the client leaves,
    the pipeline stops, or ``closing`` is set (server shutdown)."""

    async def events_handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        events = pipeline.subscribe()
        pending = asyncio.ensure_future(anext(events))
        closed = asyncio.ensure_future(closing.wait())
        await asyncio.sleep(0)  # let the subscription start before saying we are connected
        try:
            await response.write(b": connected\n\n")
            while not closing.is_set():
                done, _ = await asyncio.wait(
                    (pending, closed), timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
                )
                if closed in done:
                    break
                if not done:
                    await response.write(b": keep-alive\n\n")
                    continue
                event = pending.result()
                pending = asyncio.ensure_future(anext(events))
                await response.write(f"data: {json.dumps(event.to_dict())}\n\n".encode())
        except (StopAsyncIteration, ConnectionError):
            pass  # the pipeline stopped, or the client left
        finally:
            pending.cancel()
            closed.cancel()
            await asyncio.gather(pending, closed, return_exceptions=True)
            await events.aclose()
        return response

    return events_handler


def follow(
    pipeline: ServedPipeline, state: LiveState
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: ``state`` takes every pipeline event while the application runs."""

    async def following(_app: web.Application) -> AsyncIterator[None]:
        events = pipeline.subscribe()

        async def apply_all() -> None:
            async for event in events:
                state.apply(event)

        task = asyncio.ensure_future(apply_all())
        await asyncio.sleep(0)  # subscribed before the first request is answered
        yield
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await events.aclose()

    return following


def snapshot(state: LiveState) -> Handler:
    """``GET /state``: streams, faces and recent alerts as of now (JSON)."""

    async def state_handler(request: web.Request) -> web.Response:
        return web.json_response(state.snapshot(), headers={"Cache-Control": "no-store"})

    return state_handler


def alert_crops(crops: AlertCrops) -> Handler:
    """``GET /alerts/{alert}/crops.png``: the mouth crops of the window that raised the
    alert, side by side in one PNG; 404 once they are no longer kept."""

    async def crops_handler(request: web.Request) -> web.Response:
        found = crops.get(request.match_info["alert"])
        if found is None:
            return web.Response(status=404, text="no crops kept for this alert\n")
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        body = png_bytes(crop_strip(found))
        return web.Response(body=body, content_type="image/png", headers=headers)

    return crops_handler


def thumbnail(thumbnails: FaceThumbnails) -> Handler:
    """``GET /thumbnail.png?stream=S&face=N``: the face's latest picture (its box in the
    frame, widened), so a person can tell which participant a card is about; 404 for a face
    not (or no longer) seen, 400 for a face that is not a number."""

    async def thumbnail_handler(request: web.Request) -> web.Response:
        stream, face = request.query.get("stream", ""), request.query.get("face", "")
        if not face.isdigit():
            return web.Response(status=400, text="face must be a face number\n")
        picture = thumbnails.get(stream, int(face))
        if picture is None:
            return web.Response(status=404, text="no picture of this face\n")
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return web.Response(body=png_bytes(picture), content_type="image/png", headers=headers)

    return thumbnail_handler


def preflight(allow: str) -> Handler:
    """``OPTIONS``: the allowed methods (the CORS headers are the middleware's)."""

    async def options_handler(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Allow": allow})

    return options_handler


def metrics(pipeline: ServedPipeline, whip: WhipEndpoint, token: str) -> Handler:
    """``GET /metrics``: the pipeline's Prometheus text plus the open WHIP sessions and the
    node's streams; without the token, summed over the streams (no stream named)."""
    expected = _digest(token)

    async def metrics_handler(request: web.Request) -> web.Response:
        text = pipeline.metrics_text()
        if not _has_token(request, expected):
            text = public_text(text)
        node = (
            "# HELP lipforensics_whip_sessions Open WHIP publishing sessions\n"
            "# TYPE lipforensics_whip_sessions gauge\n"
            f"lipforensics_whip_sessions {len(whip.sessions)}\n"
            "# HELP lipforensics_streams_open Streams the node watches (of max_streams)\n"
            "# TYPE lipforensics_streams_open gauge\n"
            f"lipforensics_streams_open {whip.streams.taken}\n"
        ).encode()
        return web.Response(body=text + node, headers={"Content-Type": PROMETHEUS_TYPE})

    return metrics_handler


def health(pipeline: ServedPipeline, token: str) -> Handler:
    """``GET /healthz``: the pipeline's health as JSON; 200 if ``ok``, 503 if degraded. The
    reasons and the streams (their names) go only to holders of the token; anyone else gets
    the status (see :func:`stream.health.node.public_report`)."""
    expected = _digest(token)

    async def health_handler(request: web.Request) -> web.Response:
        report = pipeline.health()
        status = 200 if report.get("status") == "ok" else 503
        if not _has_token(request, expected):
            report = public_report(report)
        return web.json_response(report, status=status)

    return health_handler


class Server:
    """The HTTP server around a pipeline: :meth:`start`, then :meth:`stop` (stop taking
    requests, end the WHIP sessions; the caller then stops the pipeline)."""

    def __init__(self, pipeline: ServedPipeline, settings: ServerSettings) -> None:
        self.settings = settings
        #: the node's stream slots: WHIP sessions and call rooms' participants take theirs
        #: here
        self.streams = StreamSlots(settings.max_streams)
        self.app = build_app(pipeline, settings, self.streams)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def whip(self) -> WhipEndpoint:
        """The WHIP endpoint (its open sessions)."""
        return self.app[WHIP]

    @property
    def rooms(self) -> WatchedRooms:
        """The call rooms watched (``[rooms]``, ``/rooms``)."""
        return self.app[ROOMS]

    async def start(self) -> None:
        """Listen on the configured address.

        Raises:
            LipForensicsError: the address is in use or cannot be bound, or bad TLS files.
        """
        context = self.settings.ssl_context()
        runner = web.AppRunner(  # no access log: paths hold WHIP session ids
            self.app, access_log=None, **handler_options(self.settings.idle_timeout)
        )
        await runner.setup()
        cap = ConnectionCap(runner.server, self.settings.max_connections, self.app[TRUSTED])
        try:  # listening here rather than in a TCPSite, for the connection cap
            listener = await asyncio.get_running_loop().create_server(
                cap, self.settings.host, self.settings.port, ssl=context
            )
        except OSError as error:
            await runner.cleanup()
            where = f"{self.settings.host}:{self.settings.port}"
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise LipForensicsError(f"cannot listen on {where}: {reason}") from None
        self._runner, self._listener = runner, listener

    @property
    def url(self) -> str:
        """Where the server listens, e.g. ``http://127.0.0.1:8080`` (the real port if 0)."""
        host, port = self._listener.sockets[0].getsockname()[:2] if self._listener else ("", 0)
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://{host}:{port}"

    async def stop(self) -> None:
        """Stop taking requests and end every WHIP session. Idempotent."""
        if self._runner is not None and self._listener is not None:
            runner, self._runner = self._runner, None
            listener, self._listener = self._listener, None
            listener.close()
            await runner.cleanup()
