"""The dashboard: a static page that holds no data, strict browser security headers, and its
own script (run under Node.js) following /events of a real server with the bearer token."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from live_support import narrow_model, run
from server_support import TOKEN, served

from engines.backends import TorchBackend
from stream.records import StatusEvent, Verdict

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "stream" / "server" / "assets" / "dashboard.js"
JS = Path(__file__).with_name("js")
CLIENT = JS / "dashboard_client.js"
PAGE = JS / "dashboard_page.js"
#: a stream name a publisher could choose, meant to run script in the viewer's browser.
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail("Node.js is missing (apt: nodejs)")
        pytest.skip("Node.js is not installed (apt: nodejs)")
    return found


@pytest.fixture(scope="module")
def jsdom(node) -> str:
    """Node.js with jsdom installed in tests/js (``make test`` does it with npm)."""
    if not (JS / "node_modules" / "jsdom").is_dir():
        reason = "jsdom is not installed: npm install --prefix tests/js"
        if os.environ.get("LIPFORENSICS_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return node


def test_the_page_and_its_files_are_served_without_data_and_with_a_strict_policy(backend):
    async def main() -> dict[str, tuple[int, dict, str]]:
        async with served(backend) as (server, _), aiohttp.ClientSession() as http:
            found = {}
            for path in ("/dashboard", "/dashboard.js", "/dashboard.css", "/events"):
                async with http.get(server.url + path, timeout=5) as reply:
                    body = await reply.text() if reply.status == 200 and path != "/events" else ""
                    found[path] = (reply.status, dict(reply.headers), body)
            return found

    found = run(main())
    assert found["/events"][0] == 401  # the data needs the token
    for path, kind in (("/dashboard", "text/html"), ("/dashboard.js", "text/javascript")):
        status, headers, _ = found[path]
        assert status == 200 and headers["Content-Type"].startswith(kind)
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy and headers["X-Content-Type-Options"] == "nosniff"
    page, script = found["/dashboard"][2], found["/dashboard.js"][2]
    assert re.findall(r"<script[^>]*>", page) == ['<script src="dashboard.js" defer>']
    assert 'type="password"' in page and TOKEN not in page
    assert "Authorization: `Bearer ${token}`" in script and "sessionStorage" in script
    assert "innerHTML" not in script and "eval(" not in script  # server text stays text
    wanted = set(re.findall(r'getElementById\("([^"]+)"\)', script))
    assert wanted and wanted <= set(re.findall(r'id="([^"]+)"', page))  # the script finds them


def test_the_script_parses_events_split_anywhere_and_forgets_ended_streams(node):
    command = [node, str(CLIENT), str(SCRIPT), "parse"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(done.stdout)
    assert [event["type"] for event in result["events"]] == [
        "status",
        "verdict",
        "alert",
        "verdict",
        "status",
    ]
    assert result["events"][1]["probability"] == 0.8  # two data lines make one event
    assert list(result["faces"]) == ["b/2", "b/3"]  # stream a ended: its face is gone
    assert result["current"] == ["b/3"]  # b/2: no verdict for 15 s
    assert [alert["id"] for alert in result["alerts"]] == ["x"]
    assert [event["status"] for event in result["status"]] == ["ended", "connected"]


def test_the_script_follows_events_with_the_token_and_is_refused_without(backend, node):
    async def follow(url: str, token: str, count: int) -> dict:
        process = await asyncio.create_subprocess_exec(
            node, str(CLIENT), str(SCRIPT), "follow", url, token, str(count),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert process.returncode == 0
        return json.loads(out)

    async def main() -> tuple[dict, dict]:
        async with served(backend) as (server, pipeline):
            url = server.url + "/events"
            refused = await follow(url, TOKEN[:-1] + "x", 1)
            client = asyncio.ensure_future(follow(url, TOKEN, 12))
            await emit_until_done(pipeline, client)
            return refused, await client

    refused, followed = run(main())
    assert (refused["http"], refused["seen"]) == (401, 0)
    assert (followed["http"], followed["seen"]) == ("aborted after enough events", 12)
    face = followed["faces"][f"{HOSTILE}/0"]
    assert face["stream"] == HOSTILE and face["level"] == "alert"
    assert followed["alerts"] and all(a["id"].startswith("alert-") for a in followed["alerts"])
    assert all(event["stream"] == HOSTILE for event in followed["status"])


async def emit_until_done(pipeline, client: asyncio.Future) -> None:
    """Status events, verdicts and every third an alert, all for a stream with a hostile
    name, until ``client`` has seen enough (whenever it joined)."""
    number = 0
    while not client.done():
        number += 1
        pipeline.emit(StatusEvent(HOSTILE, "connected", f"event {number}"))
        alert = number % 3 == 0
        kind, event_id = ("alert", f"alert-{number}") if alert else ("verdict", "")
        pipeline.emit(
            Verdict(HOSTILE, 0, (number, number + 1.0), 4.0, 0.98, "alert", 50.0,
                    type=kind, id=event_id)
        )  # fmt: skip
        await asyncio.sleep(0.05)


def test_the_page_shows_faces_alerts_and_status_as_text_to_a_token_holder(backend, jsdom):
    """The real page in jsdom: log in, see the live tables fill; a hostile stream name is
    shown as text (no element made from it); a wrong token sends the viewer back to the
    login form."""

    async def open_page(base: str, token: str, rows: int) -> dict:
        process = await asyncio.create_subprocess_exec(
            jsdom, str(PAGE), base, token, str(rows), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert process.returncode == 0
        return json.loads(out)

    async def main() -> tuple[dict, dict]:
        async with served(backend) as (server, pipeline):
            refused = await open_page(server.url, TOKEN + "x", 1)
            viewer = asyncio.ensure_future(open_page(server.url, TOKEN, 8))
            await emit_until_done(pipeline, viewer)
            return refused, await viewer

    refused, seen = run(main())
    assert refused["connection"] == "the token was refused" and not refused["loginHidden"]
    assert refused["stored"] is None and refused["faces"] == []
    assert seen["connection"] == "live" and seen["loginHidden"] and seen["stored"] == TOKEN
    assert seen["images"] == 0  # the name stayed text
    assert seen["health"] == "health: ok"  # from /healthz, which needs no token
    (face,) = seen["faces"]
    assert [cell["text"] for cell in face[:4]] == [HOSTILE, "0", "alert", "4.00"]
    assert face[2]["class"] == "level-alert"
    assert seen["alerts"] and all(row[1]["text"] == HOSTILE for row in seen["alerts"])
    assert all(row[5]["text"].startswith("alert-") for row in seen["alerts"])
    assert seen["status"] and seen["status"][0][1]["text"] == "connected"
