"""What a late page sees at once (/state), the crops of alert windows
(/alerts/{id}/crops.png), and CORS preflights of the token-protected reads, on a real
server and pipeline on 127.0.0.1."""

from __future__ import annotations

import io

import aiohttp
import numpy as np
import pytest
from PIL import Image

from engines.backends import TorchBackend
from engines.method import normalise_crops
from stream.alerts.crops import AlertCrops, to_uint8
from stream.alerts.policy import Level, PolicyConfig
from stream.events import (
    Alert,
    Availability,
    BackendStatus,
    Connection,
    FaceEnded,
    StreamStatus,
    Verdict,
)
from stream.pipeline import Pipeline
from stream.server.app import Server
from stream.server.state import HISTORY_SECONDS, MAX_FACES, LiveState
from stream.settings.pipeline import Settings
from stream.settings.server import ServerSettings
from stream.sources.open import open_source
from tests.live_support import TALKING, narrow_model, run
from tests.server_support import AUTH, TOKEN

#: every window alerts: the crops of real alert windows without a trained detector.
ALWAYS_ALERT = PolicyConfig(suspicious_logit=-1e9, alert_logit=-1e9, escalate_windows=1)


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


def verdict(stream: str, face: int, at: float, probability: float) -> Verdict:
    return Verdict(stream, face, (at, at + 1.0), 0.0, probability, Level.CLEAR, 1.0, at)


def test_state_keeps_latest_verdicts_reconnects_and_a_minute_of_history():
    state = LiveState({"suspicious": 0.5, "alert": 0.9})
    for status in ("connected", "reconnecting", "reconnecting", "connected"):
        state.apply(StreamStatus("cam", Connection(status), status))
    for second in range(100):
        state.apply(verdict("cam", 0, float(second), second / 100))
    state.apply(Alert(verdict("cam", 0, 99.0, 0.99), "a1"))
    snapshot = state.snapshot()
    (stream,) = snapshot["streams"]
    assert (stream["status"], stream["reconnects"]) == ("connected", 2)
    (face,) = snapshot["faces"]
    assert face["probability"] == 0.99 and "id" not in face
    times = [t for t, _ in face["history"]]
    assert times[0] >= 99 - HISTORY_SECONDS and times[-1] == 99.0 and len(times) == 61
    assert [alert["id"] for alert in snapshot["alerts"]] == ["a1"]
    assert snapshot["thresholds"] == {"suspicious": 0.5, "alert": 0.9}
    assert snapshot["backend"] is None
    state.apply(StreamStatus("cam", Connection.ENDED, "done"))
    assert state.snapshot()["faces"] == [] and state.history == {}


def test_a_face_that_left_leaves_the_state_and_a_backend_outage_is_the_nodes():
    state = LiveState()
    state.apply(StreamStatus("cam", Connection.CONNECTED))
    for face in (0, 1):
        state.apply(verdict("cam", face, 1.0, 0.1))
    state.apply(FaceEnded("cam", 0, 2.0))
    state.apply(BackendStatus("triton", Availability.DEGRADED, "gone"))
    snapshot = state.snapshot()
    assert [face["face"] for face in snapshot["faces"]] == [1]
    assert list(state.history) == ["cam/1"]
    assert [stream["stream"] for stream in snapshot["streams"]] == ["cam"]  # no phantom
    assert snapshot["backend"]["status"] == "degraded"
    assert snapshot["backend"]["backend"] == "triton"


def test_state_forgets_the_least_recent_faces_beyond_its_bound():
    state = LiveState()
    for face in range(MAX_FACES + 10):
        state.apply(verdict("cam", face, 1.0, 0.1))
    faces = state.snapshot()["faces"]
    assert len(faces) == MAX_FACES and faces[0]["face"] == 10
    assert len(state.history) == MAX_FACES


def test_alert_crops_are_the_uint8_the_network_saw_and_bounded_by_count_and_bytes():
    crops = np.random.default_rng(0).integers(0, 256, (25, 96, 96), dtype=np.uint8)
    frames = tuple(normalise_crops(crops))
    assert np.array_equal(to_uint8(frames), crops[:, 4:92, 4:92])
    store = AlertCrops(keep=3, max_bytes=10**9)
    for number in range(5):
        store.keep_window(f"a{number}", frames)
    assert [store.get(f"a{n}") is not None for n in range(5)] == [False, False, True, True, True]
    one = 25 * 88 * 88
    small = AlertCrops(keep=10, max_bytes=2 * one)
    for number in range(4):
        small.keep_window(f"a{number}", frames)
    assert len(small) == 2 and small.nbytes == 2 * one and small.get("a3") is not None


def test_a_late_reader_gets_the_state_and_the_crops_of_real_alert_windows(backend):
    """A real clip through a pipeline whose every window alerts: /state lists the ended
    stream and its alert, and no longer its face (``ended`` comes after the stream's last
    verdict); the alert's crops come back as a 25-crop PNG strip, only with the token."""

    async def main():
        pipeline = Pipeline(Settings.of(jsonl=None, stride=25), backend, policy=ALWAYS_ALERT)
        server = Server(pipeline, ServerSettings(token=TOKEN, port=0))
        await server.start()
        try:
            pipeline.add_source(open_source(str(TALKING), "talking"))
            await pipeline.run_until_sources_end()
            async with aiohttp.ClientSession() as http:
                async with http.get(server.url + "/state") as reply:
                    anonymous = reply.status
                async with http.get(server.url + "/state", headers=AUTH) as reply:
                    state = await reply.json()
                pngs, refused = [], []
                for alert in state["alerts"]:
                    url = f"{server.url}/alerts/{alert['id']}/crops.png"
                    async with http.get(url) as reply:
                        refused.append(reply.status)
                    async with http.get(url, headers=AUTH) as reply:
                        assert reply.content_type == "image/png"
                        pngs.append(await reply.read())
                async with http.get(server.url + "/alerts/nope/crops.png", headers=AUTH) as r:
                    missing = r.status
            return anonymous, state, pngs, refused, missing
        finally:
            await server.stop()
            await pipeline.stop()

    anonymous, state, pngs, refused, missing = run(main(), 120)
    assert anonymous == 401 and missing == 404 and set(refused) == {401}
    assert [s["stream"] for s in state["streams"]] == ["talking"]
    assert state["streams"][0]["status"] == "ended"
    assert len(state["alerts"]) == 1  # the face entered ALERT once, at its first window
    assert state["alerts"][0]["pts"] == [0.0, 1.0]
    assert state["faces"] == []  # an ended stream's faces leave the live view
    for png in pngs:
        strip = np.asarray(Image.open(io.BytesIO(png)))
        assert strip.shape == (88, 25 * 88) and strip.std() > 10  # real mouths, not blank


def test_token_protected_reads_answer_cors_preflights_for_allowed_origins(backend):
    """A page on another allowed origin sends the bearer header, so its browser asks first
    (OPTIONS); /events, /state and the crops answer it."""
    origin = "http://127.0.0.1:8000"

    async def main():
        pipeline = Pipeline(Settings.of(jsonl=None), backend)
        server = Server(pipeline, ServerSettings(token=TOKEN, port=0, cors_origins=(origin,)))
        await server.start()
        asked = {
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        answers = {}
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/events", "/state", "/alerts/x/crops.png"):
                    async with http.options(server.url + path, headers=asked) as reply:
                        answers[path] = reply.status, dict(reply.headers)
        finally:
            await server.stop()
            await pipeline.stop()
        return answers

    for path, (status, headers) in run(main()).items():
        assert status == 204, path
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert "GET" in headers["Allow"]
