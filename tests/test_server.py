"""The HTTP server (/healthz, /metrics, /events, CORS, TLS) and the `serve` command, for real
on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from commands import cli as run_stream
from engines.backends import TorchBackend
from stream.events import Connection, StreamStatus
from stream.health.node import ASK_WITH_TOKEN
from stream.server.whip import use_ice_hosts
from stream.sources.rtsp import RtspSource
from tests.live_support import narrow_model, run
from tests.server_support import AUTH, SDP_HEADERS, TOKEN, accept_answer, publishing_peer, served

ROOT = Path(__file__).resolve().parents[1]
#: bounds every test's waiting, so a broken server fails the test instead of hanging it.
TEST_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


async def next_data(content: aiohttp.StreamReader) -> dict:
    """The next ``data:`` event of a Server-Sent Events stream (comments skipped)."""
    while not (line := await content.readline()).startswith(b"data: "):
        assert line, "the event stream ended"
    return json.loads(line[len(b"data: ") :])


def test_healthz_is_ok_when_idle_and_503_while_a_stream_is_down(backend: TorchBackend) -> None:
    async def main() -> tuple[tuple[int, dict], tuple[int, dict]]:
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            async with http.get(server.url + "/healthz") as reply:
                idle = reply.status, await reply.json()
            events = pipeline.subscribe()
            first = asyncio.ensure_future(anext(events))
            camera = RtspSource("rtsp://127.0.0.1:9/none", "cam")
            pipeline.add_source(camera)
            event = await first
            while event.status is not Connection.ERROR:  # nothing listens on the discard port
                event = await anext(events)
            async with http.get(server.url + "/healthz", headers=AUTH) as reply:
                down = reply.status, await reply.json()
            async with http.get(server.url + "/healthz") as reply:
                anonymous = reply.status, await reply.text()
            await camera.close()
            return idle, down, anonymous

    (idle_status, idle), (down_status, down), anonymous = run(main(), TEST_TIMEOUT)
    assert idle_status == 200 and idle == {"status": "ok", "reasons": []}
    assert down_status == 503 and down["status"] == "degraded"
    assert any("cam" in reason for reason in down["reasons"]) and "cam" in down["streams"]
    # without the token: the status only, no stream name
    assert anonymous[0] == 503 and "cam" not in anonymous[1]
    assert json.loads(anonymous[1]) == {"status": "degraded", "reasons": [ASK_WITH_TOKEN]}


@pytest.mark.parametrize("protect", [False, True])
def test_metrics_are_prometheus_text_open_or_protected(
    backend: TorchBackend, protect: bool
) -> None:
    async def main() -> tuple[int, int, str, str]:
        async with (
            served(backend, server={"protect_metrics": protect}) as (server, _),
            aiohttp.ClientSession() as http,
        ):
            async with http.get(server.url + "/metrics") as reply:
                anonymous = reply.status
            async with http.get(server.url + "/metrics", headers=AUTH) as reply:
                return anonymous, reply.status, reply.headers["Content-Type"], await reply.text()

    anonymous, with_token, content_type, text = run(main(), TEST_TIMEOUT)
    assert anonymous == (401 if protect else 200) and with_token == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "lipforensics_whip_sessions 0" in text
    assert "# TYPE lipforensics_verdict_latency_seconds histogram" in text


def test_metrics_without_the_token_name_no_stream(backend: TorchBackend) -> None:
    """Issue 24, row 7: ``/metrics`` without the token had 27 series naming the streams.
    Now it has the node's totals; the token shows each stream's."""
    from stream.sources.open import open_source

    async def main() -> tuple[str, str, str]:
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            source = open_source(str(ROOT / "tests" / "data" / "talking.mp4"))
            await pipeline.add_source(source)  # the whole clip, scored
            async with http.get(server.url + "/metrics") as reply:
                anonymous = await reply.text()
            async with http.get(server.url + "/metrics", headers=AUTH) as reply:
                return source.stream_id, anonymous, await reply.text()

    stream, anonymous, with_token = run(main(), TEST_TIMEOUT)
    assert f'stream="{stream}"' in with_token
    assert stream not in anonymous and "stream=" not in anonymous
    totals = {
        line.split()[0]: float(line.split()[1])
        for line in anonymous.splitlines()
        if line and not line.startswith("#")
    }
    mine = sum(
        float(line.split()[1])
        for line in with_token.splitlines()
        if line.startswith("lipforensics_frames_total{")
    )
    assert totals["lipforensics_frames_total"] == mine == 100  # the clip's frames, summed
    assert totals["lipforensics_windows_scored_total"] >= 1


def test_events_stream_pipeline_events_to_token_holders_only(backend: TorchBackend) -> None:
    async def main() -> tuple[int, int, dict, dict]:
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            wrong = {"Authorization": f"Bearer {TOKEN[:-1]}"}
            async with http.get(server.url + "/events", headers=wrong) as reply:
                refused = reply.status
            async with http.get(server.url + "/events", headers=AUTH) as reply:
                assert await reply.content.readline() == b": connected\n"
                event = StreamStatus("cam", Connection.CONNECTED, "rtsp://camera")
                pipeline.emit(event)
                received = await next_data(reply.content)
                node = pipeline.settings.fleet.node  # the Fanout adds it
                sent = {**event.to_dict(), "node": node}
                return refused, reply.status, received, sent

    refused, status, received, sent = run(main(), TEST_TIMEOUT)
    assert refused == 401 and status == 200
    assert received == sent


def test_cors_answers_only_configured_origins(backend: TorchBackend) -> None:
    allowed, other = "https://console.example", "https://elsewhere.example"

    async def main() -> dict[str, dict[str, str]]:
        async with (
            served(backend, server={"cors_origins": (allowed,)}) as (server, _),
            aiohttp.ClientSession() as http,
        ):
            preflight = {"Access-Control-Request-Method": "POST"}
            answers = {}
            for origin in (allowed, other):
                headers = {"Origin": origin, **preflight}
                async with http.options(server.url + "/whip", headers=headers) as reply:
                    answers[f"options {origin}"] = dict(reply.headers)
                headers = {"Origin": origin, "Content-Type": "application/sdp"}
                async with http.post(server.url + "/whip", data="x", headers=headers) as reply:
                    assert reply.status == 401
                    answers[f"post {origin}"] = dict(reply.headers)
            return answers

    answers = run(main(), TEST_TIMEOUT)
    assert answers[f"options {allowed}"]["Access-Control-Allow-Origin"] == allowed
    assert "Authorization" in answers[f"options {allowed}"]["Access-Control-Allow-Headers"]
    assert "Location" in answers[f"post {allowed}"]["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in answers[f"options {other}"]
    assert "Access-Control-Allow-Origin" not in answers[f"post {other}"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_with_the_given_certificate_and_key(backend: TorchBackend, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))

    async def main() -> tuple[str, int]:
        tls = {"tls_cert": cert, "tls_key": key}
        async with (
            served(backend, server=tls) as (server, _),
            aiohttp.ClientSession() as http,
            http.get(server.url + "/healthz", ssl=trust) as reply,
        ):
            return server.url, reply.status

    url, status = run(main(), TEST_TIMEOUT)
    assert url.startswith("https://127.0.0.1:") and status == 200


def test_serve_refuses_to_start_without_a_token_or_weights(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    narrow_weights: Path,
) -> None:
    monkeypatch.delenv("LIPFORENSICS_TOKEN", raising=False)
    assert run_stream.main(["serve", "--weights", "w.pth"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: a bearer token is required (--token or LIPFORENSICS_TOKEN)"
    )
    monkeypatch.setenv("LIPFORENSICS_TOKEN", TOKEN)
    assert run_stream.main(["serve"]) == 2
    assert "--weights is required" in capsys.readouterr().err
    assert run_stream.main(["serve", "--weights", "w.pth", "--tls-cert", "c.pem"]) == 2
    assert "both a certificate and a key" in capsys.readouterr().err
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    argv = ["serve", "--weights", "w.pth", "--tls-cert", str(bad), "--tls-key", str(bad)]
    assert run_stream.main(argv) == 2
    assert "cannot use TLS certificate" in capsys.readouterr().err
    config = tmp_path / "serve.toml"
    config.write_text('[pipeline]\nstride = 5\n\n[server]\nmax_sessions = "many"\n')
    assert run_stream.main(["serve", "--weights", "w.pth", "--config", str(config)]) == 2
    assert "server setting max_sessions must be a whole number" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--weights", str(narrow_weights), "--backend", "torch", "--port", port]
        assert run_stream.main(argv) == 2
    assert capsys.readouterr().err.strip().endswith(f":{port}: Address already in use")


def start_serve(jsonl: Path, weights: Path, *flags: str) -> tuple[subprocess.Popen, str, str]:
    """``serve`` in a process of its own (port 0, loopback ICE, events to ``jsonl``): the
    process, its URL (on 127.0.0.1) and what it wrote on stderr until it listened."""
    command = [sys.executable, "run_stream.py", "serve", "--port", "0", *flags]
    command += ["--weights", str(weights)]
    command += ["--backend", "torch", "--jsonl", str(jsonl), "--ice-host", "127.0.0.1"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "LIPFORENSICS_TOKEN": TOKEN},
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: select() must see every line that readline() has not taken
    )
    written, line = "", ""
    while not line.startswith("serving on") and select.select([process.stderr], [], [], 60)[0]:
        line = process.stderr.readline().decode()
        written += line
        if not line:
            process.kill()
            raise AssertionError(f"serve exited before listening: {written}")
    assert line.startswith("serving on http://"), written
    port = line.split()[2].rsplit(":", 1)[1]
    return process, f"http://127.0.0.1:{port}", written


async def publish_until_a_verdict(
    url: str, meanwhile: Callable[[], Awaitable[None]] | None = None
) -> dict:
    """Publish the talking clip over WHIP until ``/events`` shows a verdict, then await
    ``meanwhile`` (if any) still publishing; then leave."""
    use_ice_hosts(["127.0.0.1"])  # our publisher, in this process, also stays on loopback
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/events", headers=AUTH) as events:
            pc, offer = await publishing_peer()
            async with http.post(url + "/whip", data=offer, headers=SDP_HEADERS) as reply:
                assert reply.status == 201
                await accept_answer(pc, await reply.text())
            while (event := await next_data(events.content))["type"] != "verdict":
                pass
        if meanwhile is not None:
            await meanwhile()
        await pc.close()
        return event


def test_serve_scores_a_whip_publisher_and_drains_on_sigterm(
    tmp_path: Path, narrow_weights: Path
) -> None:
    jsonl = tmp_path / "events.jsonl"
    process, url, _ = start_serve(jsonl, narrow_weights)
    try:
        verdict = run(publish_until_a_verdict(url), TEST_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TEST_TIMEOUT) == 0
    finally:
        process.kill()
        process.wait()
    assert "stopped" in process.stderr.read().decode()
    written = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert verdict in written  # the sink saw what /events saw, and was flushed


def test_serve_on_every_interface_warns_of_the_token_in_clear_and_drains_on_sighup(
    tmp_path: Path, narrow_weights: Path
) -> None:
    """Issue 24, rows 10 and 11: ``serve --host 0.0.0.0`` without TLS said nothing of the
    token crossing the network in clear; SIGHUP or SIGUSR1 killed it in 0.1 s, with no
    drain and no ``ended``. Now: a warning, SIGUSR1 ignored, SIGHUP drains as SIGTERM does."""
    jsonl = tmp_path / "events.jsonl"
    process, url, started = start_serve(jsonl, narrow_weights, "--host", "0.0.0.0")

    async def signals() -> None:  # while the publisher still sends
        process.send_signal(signal.SIGUSR1)
        async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as reply:
            assert reply.status in (200, 503)  # still there
        process.send_signal(signal.SIGHUP)
        assert await asyncio.to_thread(process.wait, TEST_TIMEOUT) == 0

    try:
        verdict = run(publish_until_a_verdict(url, signals), TEST_TIMEOUT)
    finally:
        process.kill()
        process.wait()
    warning = next(line for line in started.splitlines() if line.startswith("warning:"))
    assert warning.startswith("warning: serving plain HTTP on 0.0.0.0: the bearer token travels")
    assert "stopped" in process.stderr.read().decode()
    written = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert verdict in written
    statuses = [e["status"] for e in written if e["type"] == "status"]
    assert statuses[-2:] == ["disconnected", "ended"]  # the session ended by the drain
    assert "shutting down" in [e for e in written if e["type"] == "status"][-2]["detail"]


def test_a_face_picture_is_served_to_token_holders(backend: TorchBackend) -> None:
    """``/thumbnail.png``: the face's latest picture once it has a window (96 px high,
    face-shaped), 404 for a face never seen, 400 for a face that is no number, 401 without
    the token."""
    import io

    from PIL import Image

    from stream.sources.open import open_source

    async def main() -> dict[str, object]:
        async with served(backend) as (server, pipeline), aiohttp.ClientSession() as http:
            url = server.url + "/thumbnail.png"
            source = open_source(str(ROOT / "tests" / "data" / "talking.mp4"))
            pipeline.add_source(source)
            while pipeline.thumbnails.get(source.stream_id, 0) is None:
                await asyncio.sleep(0.05)
            found = {}
            for name, query, headers in (
                ("face", {"stream": source.stream_id, "face": "0"}, AUTH),
                ("unknown", {"stream": source.stream_id, "face": "7"}, AUTH),
                ("bad", {"stream": source.stream_id, "face": "x"}, AUTH),
                ("anonymous", {"stream": source.stream_id, "face": "0"}, {}),
            ):
                async with http.get(url, params=query, headers=headers) as reply:
                    found[name] = (reply.status, await reply.read())
            return found

    found = run(main(), TEST_TIMEOUT)
    status, body = found["face"]
    assert status == 200
    picture = Image.open(io.BytesIO(body))
    assert picture.size[1] == 96 and 0.5 <= picture.size[0] / 96 <= 2.0
    assert [found[name][0] for name in ("unknown", "bad", "anonymous")] == [404, 400, 401]
