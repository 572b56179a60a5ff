"""The MQTT sink against a real mosquitto on 127.0.0.1: the topic tree and its retained
topics as a real subscriber sees them, Home Assistant discovery, alerts through the durable
outbox across a broker crash and a detector restart, the last will of a SIGKILLed detector,
and credentials checked at start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiomqtt
import pytest

from errors import LipForensicsError
from stream.alerts.alert_states import AlertStates
from stream.alerts.fanout import Fanout
from stream.alerts.mqtt import MqttSink, check_broker
from stream.alerts.mqtt_address import parse_mqtt_url
from stream.alerts.mqtt_topics import Topics, topic_token
from stream.alerts.outbox import Outbox
from stream.alerts.policy import Level
from stream.events import (
    Alert,
    Availability,
    BackendStatus,
    Connection,
    FaceEnded,
    StreamStatus,
    Verdict,
)
from stream.health.metrics import PipelineMetrics
from tests.live_support import TALKING, free_port, run
from tests.mqtt_support import Mosquitto, Watcher, require_mosquitto

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One anonymous broker for the module's tests that do not stop it."""
    require_mosquitto()
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


def verdict(stream: str, face: int, level: str) -> Verdict:
    return Verdict(stream, face, (0.0, 1.0), 5.0, 0.99, Level[level.upper()], 1.0)


def alert(number: int, stream: str = "cam") -> Alert:
    return Alert(verdict(stream, 0, "alert"), f"alert-{number}")


def status(stream: str, state: str) -> StreamStatus:
    return StreamStatus(stream, Connection(state))


def test_addresses_take_defaults_and_never_show_the_password():
    plain = parse_mqtt_url("mqtt://broker.local")
    assert (plain.host, plain.port, plain.tls, plain.prefix) == (
        "broker.local",
        1883,
        False,
        "lipforensics",
    )
    full = parse_mqtt_url("mqtts://edge:s%40cret@10.0.0.2:8884/site/a/")
    assert (full.port, full.tls, full.username, full.password) == (8884, True, "edge", "s@cret")
    assert full.prefix == "site/a" and "cret" not in full.shown and "cret" not in repr(full)
    assert parse_mqtt_url("mqtts://h").port == 8883
    for bad, message in [
        ("http://h", "must be mqtt://"),
        ("mqtt://u:secret@h/a/+", "must not hold '\\+'"),
        ("mqtt://h/a//b", "empty levels"),
        ("mqtt://u:secret@h?x=1", "no \\?query"),
    ]:
        with pytest.raises(LipForensicsError, match=message) as raised:
            parse_mqtt_url(bad)
        assert "secret" not in str(raised.value)


def test_names_become_safe_distinct_topic_levels():
    assert topic_token("cam-1_a") == "cam-1_a"
    tokens = {topic_token(name) for name in ("cam/1", "cam+1", "cam#1", "cam 1", "cam_1")}
    assert len(tokens) == 5
    assert all(not set(token) & set("/+# ") for token in tokens)
    topics = Topics("lipforensics", "edge/1")
    assert topics.of_stream("10.0.0.5/live", "state").count("/") == 3
    assert topics.discovery("yard").startswith("homeassistant/binary_sensor/edge_1-")


def test_a_stream_is_on_while_a_face_is_at_alert_and_off_once_it_leaves():
    states = AlertStates()
    assert states.update(verdict("cam", 0, "clear")) is False  # a new stream: OFF
    assert states.update(verdict("cam", 1, "suspicious")) is None
    assert states.update(alert(0)) is True  # face 0 entered ALERT
    assert states.update(verdict("cam", 1, "alert")) is None  # still ON
    assert states.update(verdict("cam", 1, "clear")) is None  # face 0 holds it ON
    assert states.update(FaceEnded("cam", 1, 3.0)) is None  # face 1 left; 0 still at ALERT
    assert states.update(FaceEnded("cam", 0, 6.0)) is False  # face 0 left the picture
    states.update(verdict("cam", 2, "alert"))
    assert states.update(status("cam", "reconnecting")) is False
    assert states.states() == {"cam": False}


def test_every_event_and_the_metrics_name_the_node():
    class Keep:
        events: list = []

        def send(self, event) -> None:
            self.events.append(event)

    fanout = Fanout([Keep()], node="edge-7")
    fanout.send(status("cam", "connected"))
    fanout.send(alert(0))
    assert [event.to_dict()["node"] for event in Keep.events] == ["edge-7", "edge-7"]
    assert b'lipforensics_node_info{node="edge-7"} 1.0' in PipelineMetrics(node="edge-7").text()


def test_a_server_forgets_the_topics_of_streams_that_ended_long_ago(tmp_path, monkeypatch):
    monkeypatch.setattr("stream.alerts.mqtt.KEEP_ENDED", 2)
    address = parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}")  # nothing listens

    async def main() -> set[str]:
        sink = MqttSink(address, "edge-1", Outbox(tmp_path / "o.sqlite"))
        for name, state in [("a", "ended"), ("b", "ended"), ("a", "connected")]:
            sink.send(status(name, state))  # "a" is back
        for name in ("c", "d"):
            sink.send(status(name, "ended"))
        held = {topic.split("/")[2] for topic in sink._retained if topic.startswith("lipf")}
        await sink.close(grace=0.1)
        return held

    held = run(main())  # "b" ended longest ago, "a" runs again; the node's own topics stay
    assert held == {"a", "c", "d", "backend_state"}


async def retained(broker: Mosquitto, topics: list[str]) -> dict[str, bytes]:
    """What a subscriber that joins now gets as retained messages on ``topics``."""
    late = Watcher(broker, topics, identifier="late")
    late.start()
    await late.subscribed.wait()
    await asyncio.sleep(0.3)  # retained messages come right after the subscription
    await late.stop()
    return {topic: payload for topic, payload, kept in late.messages if kept}


def test_a_subscriber_sees_the_topic_tree_and_home_assistant_discovery(broker, tmp_path):
    topics = Topics("lipforensics", "edge-1")
    root = topics.root
    discovery = topics.discovery("door/1")
    stream = f"{root}/{topic_token('door/1')}"

    async def main() -> tuple[Watcher, dict[str, bytes], dict[str, bytes]]:
        watcher = Watcher(broker, [f"{root}/#", "homeassistant/#"], identifier="tree")
        watcher.start()
        await watcher.subscribed.wait()
        address, outbox = parse_mqtt_url(broker.url()), Outbox(tmp_path / "o.sqlite")
        sink = MqttSink(address, "edge-1", outbox)
        await watcher.wait_for(lambda: watcher.payloads(topics.available), "online")
        sink.send(status("door/1", "connected"))
        for level in ("clear", "suspicious", "alert"):
            sink.send(verdict("door/1", 0, level))
        sink.send(alert(0, "door/1"))
        sink.send(BackendStatus("triton", Availability.DEGRADED, "inference backend gone"))
        await watcher.wait_for(lambda: b"ON" in watcher.payloads(f"{stream}/state"), "ON")
        await watcher.wait_for(lambda: watcher.payloads(topics.events), "the alert")
        await watcher.wait_for(lambda: len(watcher.payloads(f"{stream}/verdict")) == 3, "verdicts")
        await watcher.wait_for(lambda: watcher.payloads(topics.backend_status), "the outage")
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="home-assistant") as ha:
            await ha.publish("homeassistant/status", b"online", qos=1)
        await watcher.wait_for(lambda: len(watcher.payloads(discovery)) == 2, "discovery again")
        kept = await retained(broker, [f"{root}/#", "homeassistant/#"])
        await sink.close()
        after = await retained(broker, [topics.available])
        await watcher.stop()
        return watcher, kept, after

    watcher, kept, after = run(main())
    assert [json.loads(p)["id"] for p in watcher.payloads(topics.events)] == ["alert-0"]
    assert [json.loads(p)["level"] for p in watcher.payloads(f"{stream}/verdict")] == [
        "clear",
        "suspicious",
        "alert",
    ]
    config = json.loads(kept[discovery])
    assert config["state_topic"] == f"{stream}/state"
    assert config["availability_topic"] == topics.available
    assert config["unique_id"] == f"lipforensics_edge-1_{topic_token('door/1')}"
    assert config["device"]["identifiers"] == ["lipforensics_edge-1"]
    assert kept[topics.available] == b"online" and kept[f"{stream}/state"] == b"ON"
    assert json.loads(kept[f"{stream}/status"])["status"] == "connected"
    assert topics.events not in kept and f"{stream}/verdict" not in kept  # not retained
    # the outage is the node's: its own topics and entity, no stream named "" (or any other)
    assert kept[topics.backend_state] == b"OFF"
    outage = json.loads(kept[topics.backend_status])
    assert (outage["type"], outage["status"], outage["backend"]) == (
        "backend",
        "degraded",
        "triton",
    )
    inference = json.loads(kept[topics.backend_discovery])
    assert inference["device_class"] == "connectivity"
    assert inference["state_topic"] == topics.backend_state
    assert inference["device"] == config["device"]  # the node's device, beside its streams
    streams = {t.split("/")[2] for t in kept if t.startswith(root) and t.count("/") == 3}
    assert streams == {topic_token("door/1")}
    sensors = [t for t in kept if t.startswith("homeassistant/binary_sensor/")]
    assert sorted(sensors) == sorted([discovery, topics.backend_discovery])
    assert after == {topics.available: b"offline"}  # a clean close says so itself


def test_alerts_raised_while_the_broker_is_down_all_arrive_once_it_is_back(tmp_path):
    """The broker is SIGKILLed (its subscriber's session saved before), alerts pile up in
    the outbox on disk, the broker restarts: every alert arrives, each once, in order."""
    require_mosquitto()
    crashing = Mosquitto(tmp_path, persistence=True)
    crashing.start()
    events = Topics("lipforensics", "edge-1").events
    outbox = Outbox(tmp_path / "outbox.sqlite")

    async def main() -> tuple[list[str], int]:
        watcher = Watcher(crashing, [events], identifier="crash-watcher")
        watcher.start()
        await watcher.subscribed.wait()
        crashing.save()  # the subscriber's session outlives the crash
        sink = MqttSink(parse_mqtt_url(crashing.url()), "edge-1", outbox, max_backoff=1.0)
        sink.send(alert(0))
        await watcher.wait_for(lambda: watcher.payloads(events), "the first alert")
        crashing.kill()
        await watcher.wait_for(lambda: not sink.connected, "the sink noticing", timeout=30)
        for number in (1, 2, 3):
            sink.send(alert(number))
        waiting = outbox.pending
        crashing.start()
        await watcher.wait_for(lambda: len(watcher.payloads(events)) >= 4, "every alert")
        await sink.close()
        await watcher.stop()
        return [json.loads(p)["id"] for p in watcher.payloads(events)], waiting

    try:
        ids, waiting = run(main(), timeout=90)
    finally:
        crashing.stop()
    assert waiting == 3  # on disk while the broker was away
    assert ids == ["alert-0", "alert-1", "alert-2", "alert-3"]
    with Outbox(tmp_path / "outbox.sqlite") as left:
        assert left.pending == 0


def test_a_wrong_password_is_one_line_and_exit_2(tmp_path, capsys):
    require_mosquitto()
    guarded = Mosquitto(tmp_path, users={"edge": "s3cret"})
    guarded.start()
    try:
        check_broker(guarded.url("edge", "s3cret"))  # takes it
        command = ["run", str(TALKING), "--weights", str(tmp_path / "w.pth")]
        from commands import cli as run_stream

        assert run_stream.main([*command, "--mqtt", guarded.url("edge", "wrong")]) == 2
    finally:
        guarded.stop()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong" not in err, err
    assert f"error: MQTT broker mqtt://***@127.0.0.1:{guarded.port} refused the connection" in err
    assert "Not authorized" in err


def detector(weights: Path, url: str, outbox: Path, jsonl: Path, sources: list[str]) -> list[str]:
    command = [sys.executable, "run_stream.py", "run", *sources, "--weights", str(weights)]
    command += ["--backend", "torch", "--jsonl", str(jsonl), "--node", "edge-1"]
    return [*command, "--mqtt", url, "--mqtt-outbox", str(outbox)]


def alert_ids(jsonl: Path) -> list[str]:
    lines = jsonl.read_text().splitlines() if jsonl.exists() else []
    return [event["id"] for line in lines if (event := json.loads(line))["type"] == "alert"]


@pytest.mark.slow
def test_alerts_survive_a_detector_restart_and_a_killed_detector_goes_offline(
    alerting_weights, tmp_path
):
    """Broker down: the detector raises an alert per stream and is SIGKILLed with them
    pending. Broker up: the next detector on the same outbox (watching a camera that never
    answers, so it runs until killed) publishes them, each once; SIGKILLed in turn, its
    last will says offline."""
    require_mosquitto()
    server = Mosquitto(tmp_path)
    topics = Topics("lipforensics", "edge-1")
    outbox, jsonl = tmp_path / "outbox.sqlite", tmp_path / "first.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    camera = f"rtsp://127.0.0.1:{free_port()}/none"
    status = topics.of_stream("127.0.0.1/none", "status")  # the camera's stream id

    async def main() -> Watcher:
        first = await asyncio.create_subprocess_exec(
            *detector(alerting_weights, server.url(), outbox, jsonl, [str(TALKING)] * 2),
            cwd=ROOT,
            env=env,
        )
        while len(alert_ids(jsonl)) < 2 and first.returncode is None:
            await asyncio.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        server.start()
        watcher = Watcher(server, [f"{topics.root}/#"], identifier="restart-watcher")
        watcher.start()
        await watcher.subscribed.wait()
        second = await asyncio.create_subprocess_exec(
            *detector(alerting_weights, server.url(), outbox, tmp_path / "2.jsonl", [camera]),
            cwd=ROOT,
            env=env,
        )
        await watcher.wait_for(lambda: len(watcher.payloads(topics.events)) >= 2, "the alerts")
        await watcher.wait_for(lambda: watcher.payloads(status), "the camera's status")
        assert watcher.payloads(topics.available) == [b"online"]
        second.send_signal(signal.SIGKILL)
        assert await second.wait() == -signal.SIGKILL
        await watcher.wait_for(lambda: b"offline" in watcher.payloads(topics.available), "will")
        await watcher.stop()
        return watcher

    try:
        watcher = run(main(), timeout=120)
    finally:
        server.stop()
    published = [json.loads(payload) for payload in watcher.payloads(topics.events)]
    assert [event["id"] for event in published] == alert_ids(jsonl)  # each once, in order
    assert {event["node"] for event in published} == {"edge-1"}
    assert watcher.payloads(topics.available) == [b"online", b"offline"]
    assert json.loads(watcher.payloads(status)[-1])["node"] == "edge-1"
