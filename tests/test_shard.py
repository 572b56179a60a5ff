"""`run --shard K/N`: rendezvous hashing splits a camera list evenly and stably, the same in
every process, and the CLI runs only this node's cameras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from commands import cli as run_stream
from errors import LipForensicsError
from stream.settings.shard import Shard, owner, parse_shard, read_cameras

ROOT = Path(__file__).resolve().parents[1]
NO_FACE = ROOT / "tests" / "data" / "no_face.mp4"
CAMERAS = [f"cam-{number:04d}" for number in range(3000)]


def test_each_of_n_nodes_gets_about_one_nth_of_the_cameras():
    for count in (2, 5, 8):
        loads = Counter(owner(camera, count) for camera in CAMERAS)
        assert set(loads) == set(range(count))
        fair = len(CAMERAS) / count
        assert all(abs(load - fair) < 0.15 * fair for load in loads.values()), loads


def test_adding_a_node_moves_about_one_nth_and_only_to_the_new_node():
    for count in (2, 4, 7):
        before = {camera: owner(camera, count) for camera in CAMERAS}
        after = {camera: owner(camera, count + 1) for camera in CAMERAS}
        moved = [camera for camera in CAMERAS if before[camera] != after[camera]]
        assert {after[camera] for camera in moved} == {count}  # all to the new node
        share = len(moved) / len(CAMERAS)
        assert abs(share - 1 / (count + 1)) < 0.03, share


def test_every_camera_runs_on_exactly_one_node():
    shards = [Shard(index, 3).pick(CAMERAS) for index in range(3)]
    assert sorted(sum(shards, [])) == CAMERAS


def test_the_split_is_the_same_in_every_process():
    """Python's own hash() differs per process; the split must not."""
    code = (
        "from stream.settings.shard import Shard; "
        "print(Shard(1, 3).pick(f'cam-{n}' for n in range(50)))"
    )
    picks = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(picks) == 1 and picks.pop().startswith("['cam-")


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1/0", "a/b", "2", "1/2/3"])
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(LipForensicsError, match="shard must be K/N"):
        parse_shard(text)


def test_cameras_come_from_the_cameras_table(tmp_path):
    config = tmp_path / "cameras.toml"
    config.write_text(
        'stride = 25\n[cameras]\ndoor = "rtsp://u:p@10.0.0.5/s1"\n"yard/e" = "a.mp4"\n'
    )
    assert read_cameras(config) == {"door": "rtsp://u:p@10.0.0.5/s1", "yard/e": "a.mp4"}
    config.write_text("[cameras]\ndoor = 5\n")
    with pytest.raises(LipForensicsError, match="camera 'door' .* needs an address"):
        read_cameras(config)


def test_run_with_a_shard_runs_only_its_cameras(narrow_weights, tmp_path):
    names = [f"camera-{number}" for number in range(6)]
    mine = Shard(1, 2).pick(names)
    assert 0 < len(mine) < len(names)  # the split is not trivial for these names
    config = tmp_path / "cameras.toml"
    table = "".join(f'{name} = "{NO_FACE}"\n' for name in names)
    config.write_text(f'stride = 25\nbackend = "torch"\n[cameras]\n{table}')
    out = tmp_path / "events.jsonl"
    command = [sys.executable, "run_stream.py", "run", "--shard", "1/2", "--config", str(config)]
    command += ["--weights", str(narrow_weights), "--jsonl", str(out), "--node", "edge-1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"shard 1/2: {len(mine)} of 6 cameras ({', '.join(mine)})" in done.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    ended = sorted(e["stream"] for e in events if e.get("status") == "ended")
    assert ended == sorted(mine)
    assert {e["node"] for e in events} == {"edge-1"}


def test_run_without_any_source_is_one_line_and_exit_2(tmp_path, capsys):
    assert run_stream.main(["run", "--weights", str(tmp_path / "w.pth")]) == 2
    error = capsys.readouterr().err
    assert "no sources: give SOURCE arguments or a [cameras] or [rooms] table" in error
