"""The JSON lines of `run` on the demo clips, compared with the ones frozen in
tests/data/demo_events.jsonl (tests/data/README.md says how they were made): the same events
per stream in the same order, the same keys and JSON types, the deterministic fields equal,
logits and probabilities within 1e-4. Wall times, latencies and alert ids differ per run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "tests" / "data" / "demo_events.jsonl"
DEMO = ROOT / "training" / "demo"
COMMAND = [
    sys.executable,
    "run_stream.py",
    "run",
    "--node",
    "test-node",
    "--weights",
    "training/demo/demo_lipforensics.pth",
    "training/demo/genuine.mp4",
    "training/demo/manipulated.mp4",
]
#: fields that differ from run to run (``id``: checked as 32 hex digits instead)
PER_RUN = {"wall_time", "latency_ms", "id"}
CLOSE = {"logit", "probability"}

JsonEvent = dict[str, object]


def by_stream(events: list[JsonEvent]) -> dict[str, list[JsonEvent]]:
    """Each stream's events in the order they came (streams interleave freely)."""
    streams: dict[str, list[JsonEvent]] = {}
    for event in events:
        streams.setdefault(str(event["stream"]), []).append(event)
    return streams


def read(lines: str) -> list[JsonEvent]:
    return [json.loads(line) for line in lines.splitlines()]


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> list[JsonEvent]:
    """Today's JSON lines of the fixture's command (a fresh export cache)."""
    env = {**os.environ, "LIPFORENSICS_CACHE": str(tmp_path_factory.mktemp("cache"))}
    done = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return read(done.stdout)


def test_run_keeps_the_frozen_events_of_the_demo_clips(events):
    frozen = by_stream(read(FROZEN.read_text()))
    now = by_stream(events)
    assert sorted(now) == sorted(frozen) == ["genuine", "manipulated"]
    for stream, expected in frozen.items():
        got = now[stream]
        assert [e["type"] for e in got] == [e["type"] for e in expected], stream
        for old, new in zip(expected, got, strict=True):
            assert list(new) == list(old), (stream, old, new)
            assert [type(v) for v in new.values()] == [type(v) for v in old.values()], new
            for key in old.keys() - PER_RUN - CLOSE:
                assert new[key] == old[key], (stream, key, old, new)
            for key in old.keys() & CLOSE:
                assert new[key] == pytest.approx(old[key], abs=1e-4), (stream, key, old, new)
            assert round(new["wall_time"], 6) == new["wall_time"], new  # to the microsecond
            if "id" in old:
                assert re.fullmatch("[0-9a-f]{32}", str(new["id"])), new


def test_the_frozen_events_hold_an_alert_on_the_manipulated_clip_only():
    """The fixture says something: verdicts for both clips, one alert, each stream ended."""
    frozen = by_stream(read(FROZEN.read_text()))
    alerts = {s: [e for e in evs if e["type"] == "alert"] for s, evs in frozen.items()}
    assert len(alerts["manipulated"]) == 1 and alerts["genuine"] == []
    for evs in frozen.values():
        assert evs[0]["status"] == "connected" and evs[-1]["status"] == "ended"
        assert sum(e["type"] == "verdict" for e in evs) > 10
