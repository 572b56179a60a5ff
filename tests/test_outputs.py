"""When the event outputs fail or lag, through the real CLI: a closed pipe (``| head -1``)
ends `run` quietly, a full disk in one error line with the webhook's outbox kept, and alerts
a webhook receiver did not take are named in a warning at exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engines.checkpoint import save_checkpoint
from stream.alerts.outbox import Outbox
from tests.live_support import TALKING, free_port, narrow_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def alerting_weights(tmp_path_factory) -> Path:
    """The narrow network with a constant logit of 10: every face alerts."""
    model = narrow_model()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.fill_(10.0)
    return save_checkpoint(tmp_path_factory.mktemp("alerting") / "alerting.pth", model)


def run_command(weights: Path, *extra: str) -> list[str]:
    return [sys.executable, "run_stream.py", "run", str(TALKING), "--weights", str(weights),
            "--backend", "torch", *extra]  # fmt: skip


def problems(stderr: str) -> list[str]:
    """The stderr lines beyond the thresholds note."""
    return [line for line in stderr.splitlines() if not line.startswith("thresholds: ")]


def test_a_closed_stdout_ends_the_run_quietly_with_141(alerting_weights):
    process = subprocess.Popen(
        run_command(alerting_weights, "--realtime"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout.readline().startswith('{"stream":"talking"')
    process.stdout.close()  # what `| head -1` does after its line
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141 and problems(stderr) == [], stderr


def test_a_full_disk_is_one_error_line_and_the_outbox_keeps_the_alerts(alerting_weights, tmp_path):
    outbox = tmp_path / "outbox.sqlite"
    with Outbox(outbox) as earlier:  # an alert an earlier run could not deliver
        earlier.add({"type": "alert", "id": "earlier-1", "stream": "cam"})
    refused = f"http://127.0.0.1:{free_port()}/hook"
    command = run_command(alerting_weights, "--jsonl", "/dev/full", "--webhook", refused,
                          "--webhook-outbox", str(outbox))  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = problems(done.stderr)
    assert done.returncode == 1 and len(lines) == 2, done.stderr
    assert lines[0].startswith("warning: ") and str(outbox) in lines[0]
    assert lines[1] == "error: cannot write events to /dev/full: No space left on device"
    with Outbox(outbox) as kept:
        assert kept.next_pending()[1]["id"] == "earlier-1"
        assert lines[0].startswith(f"warning: {kept.pending} alert(s) ")


def test_alerts_a_hanging_webhook_did_not_take_are_named_at_exit(alerting_weights, tmp_path):
    outbox = tmp_path / "outbox.sqlite"
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)  # accepts, never answers
        hook = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
        command = run_command(alerting_weights, "--jsonl", str(tmp_path / "events.jsonl"),
                              "--webhook", hook, "--webhook-outbox", str(outbox))  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = problems(done.stderr)
    assert done.returncode == 0 and len(lines) == 1, done.stderr
    with Outbox(outbox) as kept:
        pending = kept.pending
    assert pending >= 1
    assert lines[0] == (
        f"warning: {pending} alert(s) not delivered to the webhook yet; they wait in {outbox}, "
        "and the next run with this outbox sends them first"
    )
