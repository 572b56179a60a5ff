"""A small client of Janus's HTTP API (the "Janus API" over plain HTTP or HTTPS).

One :class:`JanusSession` is one Janus session: handles attached to plugins, requests sent
with ``POST``, and the session's events read by a long poll (``GET``) on a task of its own.
A plugin request that Janus answers later (``ack``, then an ``event`` with the same
transaction) is awaited as one call; every other event (a publisher joining, a handle's
``webrtcup`` or ``hangup``) goes to :meth:`JanusSession.events`. A keep-alive is sent every
:data:`KEEPALIVE` seconds. When the server goes away (refused, timed out, "no such
session") the session is *lost*: pending calls raise :class:`JanusLost` and
:meth:`JanusSession.events` ends.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field

import aiohttp

from errors import LipForensicsError

#: seconds between keep-alives (Janus's default session timeout is 60 s).
KEEPALIVE = 20.0
#: seconds a request (or a plugin's late answer) may take.
REQUEST_TIMEOUT = 10.0
#: seconds a long poll may stay open (Janus answers an empty one after 30 s).
POLL_TIMEOUT = 40.0
#: events one long poll may return.
POLL_EVENTS = 10
#: Janus's error code for a session it does not know (restarted, or timed out).
NO_SUCH_SESSION = 458


class JanusLost(Exception):
    """The session is gone: the server cannot be reached, or it forgot the session."""


class JanusRefused(LipForensicsError):
    """Janus or its plugin refused a request (a wrong PIN or secret, no such room)."""


@dataclass(frozen=True, slots=True)
class JanusEvent:
    """One event of a session.

    Attributes:
        kind: Janus's ``janus`` field (``event``, ``webrtcup``, ``hangup``, ``media``,
            ``detached``, ...).
        handle: the handle it is about (0: the session's own).
        data: a plugin event's data (``plugindata.data``; empty for the others).
        jsep: the SDP that came with it, if any.
        raw: the whole message.
    """

    kind: str
    handle: int
    data: dict = field(default_factory=dict)
    jsep: dict | None = None
    raw: dict = field(default_factory=dict)


def _event(message: dict) -> JanusEvent:
    plugin = message.get("plugindata") or {}
    return JanusEvent(
        kind=str(message.get("janus", "")),
        handle=int(message.get("sender") or 0),
        data=plugin.get("data") or {},
        jsep=message.get("jsep"),
        raw=message,
    )


class JanusSession:
    """A Janus session over HTTP (see the module doc); open with :meth:`create`.

    Args:
        http: the HTTP client session to use (its lifetime is the caller's).
        api: the API root, ``http(s)://HOST:PORT/janus``.
        secret, token: the API secret and token, sent with every request (None: none).
        shown: the server as messages may show it (no secrets).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api: str,
        *,
        secret: str | None = None,
        token: str | None = None,
        shown: str = "",
    ) -> None:
        self.http, self.api, self.shown = http, api, shown or api
        self._auth = {k: v for k, v in (("apisecret", secret), ("token", token)) if v}
        self.id = 0
        self._waiting: dict[str, asyncio.Future[JanusEvent]] = {}
        self._events: asyncio.Queue[JanusEvent | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.lost: str | None = None

    @classmethod
    async def create(
        cls, http: aiohttp.ClientSession, api: str, **options: str | None
    ) -> JanusSession:
        """A new session on the server at ``api`` (``options``: ``secret``, ``token``,
        ``shown``), polling for its events.

        Raises:
            JanusLost: the server cannot be reached.
            JanusRefused: it refused the session (a wrong secret or token).
        """
        session = cls(http, api, **options)
        reply = await session._post("", {"janus": "create"})
        session.id = int(reply["data"]["id"])
        loop = asyncio.get_running_loop()
        session._tasks = [loop.create_task(session._poll()), loop.create_task(session._keepalive())]
        return session

    async def attach(self, plugin: str) -> int:
        """A new handle on ``plugin`` (e.g. ``janus.plugin.videoroom``)."""
        reply = await self._post(f"/{self.id}", {"janus": "attach", "plugin": plugin})
        return int(reply["data"]["id"])

    async def detach(self, handle: int) -> None:
        """Drop ``handle`` (its peer connection, its place in a room); a lost session or a
        handle already gone is no error."""
        with suppress(JanusLost, JanusRefused):
            await self._post(f"/{self.id}/{handle}", {"janus": "detach"})

    async def message(self, handle: int, body: dict, jsep: dict | None = None) -> JanusEvent:
        """Send a plugin request on ``handle`` and return its answer (at once, or the event
        with its transaction).

        Raises:
            JanusRefused: the plugin answered with an error.
            JanusLost: the session was lost before the answer.
        """
        message: dict = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        transaction = secrets.token_hex(8)
        answer = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = answer
        try:
            reply = await self._post(f"/{self.id}/{handle}", message, transaction)
            if reply.get("janus") == "success":
                event = _event(reply)
            else:  # "ack": the answer comes as an event
                event = await asyncio.wait_for(answer, REQUEST_TIMEOUT)
        except TimeoutError:
            raise JanusLost(f"{self.shown}: no answer to {body.get('request')!r}") from None
        finally:
            self._waiting.pop(transaction, None)
        error = event.data.get("error")
        if error:
            raise JanusRefused(f"{self.shown}: {body.get('request')}: {error}")
        return event

    async def events(self) -> AsyncIterator[JanusEvent]:
        """The session's events that answer no request, until the session is lost."""
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        """Destroy the session on the server (when it still answers) and stop polling."""
        for task in self._tasks:
            task.cancel()
        if self.lost is None and self.id:
            with suppress(JanusLost, JanusRefused):
                await self._post(f"/{self.id}", {"janus": "destroy"})
        self._lose("closed")

    async def _post(self, path: str, message: dict, transaction: str | None = None) -> dict:
        """POST ``message`` (transaction and credentials added); Janus's reply.

        Raises:
            JanusLost: no answer, or the session is unknown to the server.
            JanusRefused: any other error Janus answers.
        """
        body = {**message, "transaction": transaction or secrets.token_hex(8), **self._auth}
        try:
            async with self.http.post(
                self.api + path, json=body, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            ) as response:
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise JanusLost(f"{self.shown}: {type(error).__name__}: {error}") from None
        if reply.get("janus") == "error":
            error = reply.get("error") or {}
            reason = f"{self.shown}: {error.get('reason', 'error')} (code {error.get('code')})"
            if error.get("code") == NO_SUCH_SESSION:
                raise JanusLost(reason)
            raise JanusRefused(reason)
        return reply

    async def _poll(self) -> None:
        """Long-poll the session's events until it is lost."""
        url = f"{self.api}/{self.id}"
        query = {"maxev": str(POLL_EVENTS), **self._auth}
        timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT)
        try:
            while True:
                async with self.http.get(url, params=query, timeout=timeout) as response:
                    reply = await response.json(content_type=None)
                for message in reply if isinstance(reply, list) else [reply]:
                    self._dispatch(message)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self._lose(f"{self.shown}: {type(error).__name__}: {error}")
        except JanusLost as error:
            self._lose(str(error))

    def _dispatch(self, message: dict) -> None:
        """Hand one polled message to the request waiting for it, or to :meth:`events`."""
        kind = message.get("janus")
        if kind == "keepalive":
            return
        if kind == "timeout":
            reason = (message.get("error") or {}).get("reason", "the session timed out")
            raise JanusLost(f"{self.shown}: {reason}")
        waiting = self._waiting.get(str(message.get("transaction")))
        if waiting is not None and kind == "event" and not waiting.done():
            waiting.set_result(_event(message))
        else:
            self._events.put_nowait(_event(message))

    async def _keepalive(self) -> None:
        """Tell Janus the session is in use every :data:`KEEPALIVE` seconds."""
        with suppress(JanusLost, JanusRefused):
            while self.lost is None:
                await asyncio.sleep(KEEPALIVE)
                await self._post(f"/{self.id}", {"janus": "keepalive"})

    def _lose(self, reason: str) -> None:
        """The session is gone: fail what waits, end :meth:`events`."""
        if self.lost is not None:
            return
        self.lost = reason
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(JanusLost(reason))
        self._events.put_nowait(None)
