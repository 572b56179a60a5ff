"""What one client may hold of the server, with raw sockets on 127.0.0.1: oversized request
heads get a quiet 400 (one short log line, none of the sender's text), a client that
trickles its headers or sits silent is dropped, and connections beyond the cap get 503."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from live_support import narrow_model, run
from server_support import served

from engines.backends import TorchBackend

#: bounds every test's waiting, so a server that never drops a client fails instead of hanging.
TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()


async def answer(url: str, request: bytes) -> bytes:
    """The server's whole answer to ``request`` (it closes the connection after it)."""
    async with connection(url) as (reader, writer):
        writer.write(request)
        return await reader.read()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /healthz?" + b"EVIL" * 2500 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n"
        + b"".join(b"X-EVIL-%d: 1\r\n" % i for i in range(101))
        + b"\r\n",
    ],
    ids=["8 KB request line", "101 headers"],
)
def test_an_oversized_request_head_gets_a_quiet_400(backend, caplog, request_head):
    async def main() -> bytes:
        async with served(backend) as (server, _):
            return await answer(server.url, request_head)

    with caplog.at_level(logging.DEBUG):
        reply = run(main(), TEST_TIMEOUT)
    assert reply.split(b" ", 2)[1] == b"400"
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and records[0].exc_info is None
    line = records[0].getMessage()
    assert line.startswith("refused a malformed request from 127.0.0.1: 400 ")
    assert "EVIL" not in line and "\n" not in line


def test_a_client_that_trickles_its_headers_is_dropped(backend):
    async def main() -> int:
        async with (
            served(backend, server={"idle_timeout": 1.0}) as (server, _),
            connection(server.url) as (reader, writer),
        ):
            head = b"GET /healthz HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
            for sent, byte in enumerate(head):  # one byte every 0.1 s: 22 s for all of it
                writer.write(bytes([byte]))
                await asyncio.sleep(0.1)
                if reader.at_eof() or writer.is_closing():
                    return sent
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), 0.001) == b"":
                        return sent
            return len(head)

    sent = run(main(), TEST_TIMEOUT)
    assert sent < len(b"GET /healthz HTTP/1.1\r\nX-Slow: ") + 200


def test_a_silent_connection_is_closed_and_an_idle_one_after_its_request(backend):
    async def main() -> tuple[bytes, bytes]:
        async with served(backend, server={"idle_timeout": 1.0}) as (server, _):
            async with connection(server.url) as (reader, _):
                silent = await reader.read()  # ends when the server closes it
            async with connection(server.url) as (reader, writer):
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                idle = await reader.read()  # the answer, then the close
            return silent, idle

    silent, idle = run(main(), TEST_TIMEOUT)
    assert silent == b""
    assert idle.startswith(b"HTTP/1.1 200 ") and idle.endswith(b'"reasons": []}')


def test_connections_beyond_the_cap_get_503(backend):
    async def main() -> tuple[list[bytes], bytes]:
        async with served(backend, server={"max_connections": 3}) as (server, _):
            async with contextlib.AsyncExitStack() as stack:
                held = [await stack.enter_async_context(connection(server.url)) for _ in range(3)]
                await asyncio.sleep(0.2)  # let the server take the three in
                over = await answer(server.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                replies = []
                for reader, writer in held:  # the first three are still served
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    replies.append(await reader.read())
            return replies, over

    replies, over = run(main(), TEST_TIMEOUT)
    assert over.startswith(b"HTTP/1.1 503 ") and over.endswith(b"too many connections\n")
    assert all(reply.startswith(b"HTTP/1.1 200 ") for reply in replies)
