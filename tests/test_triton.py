"""The triton backend against a real Triton Inference Server on 127.0.0.1.

One server per module serves what ``export-triton`` wrote from the narrow test weights (as
:func:`triton_support.python_repository` adapts it to the python backend); the test that
kills it starts it again on the same ports.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from calibration.thresholds import calibrate, save_thresholds
from commands.cli import main
from engines.checkpoint import save_checkpoint
from engines.digest import file_sha256
from engines.triton import ENCODER_MODEL, HEAD_MODEL, TritonTarget
from stream.detector import Detector
from stream.events import Availability, BackendStatus, Frame, Verdict
from stream.settings.pipeline import Settings
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING, ListSink, free_port, narrow_model, run
from tests.triton_support import TritonServer, python_repository, require_triton_server

pytestmark = pytest.mark.usefixtures("one_torch_thread")


ROOT = Path(__file__).resolve().parent.parent
#: the settings of the live tests: no JSON lines, one face, files as fast as possible.
LIVE = Settings.of(jsonl=None, stride=5, max_faces=1)


@pytest.fixture(scope="module")
def repository(tmp_path_factory, narrow_weights) -> Path:
    """What ``export-triton`` writes for the narrow weights (max batch 64, CPU)."""
    out = tmp_path_factory.mktemp("triton") / "repository"
    assert main(["export-triton", "--weights", str(narrow_weights), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(repository, tmp_path_factory) -> TritonServer:
    """A real tritonserver serving ``repository`` (python backend), for the whole module."""
    require_triton_server()
    folder = tmp_path_factory.mktemp("served")
    served = TritonServer(python_repository(repository, folder / "repository"), folder / "log")
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """Random mouth crops (60 frames: two clips at stride 25, eight at stride 5)."""
    path = tmp_path_factory.mktemp("crops") / "crops.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (60, 96, 96), dtype=np.uint8))
    return path


def scan_json(capsys, *args: object) -> dict:
    code = main(["scan", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_export_triton_writes_a_repository_for_a_stock_server(repository, narrow_weights, tmp_path):
    digest = file_sha256(narrow_weights)
    for model in (ENCODER_MODEL, HEAD_MODEL):
        config = (repository / model / "config.pbtxt").read_text()
        assert (repository / model / "1" / "model.onnx").is_file()
        assert 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 64" in config
        assert "dynamic_batching {" in config and "max_queue_delay_microseconds:" in config
        assert "kind: KIND_CPU" in config and "optimization" not in config
        assert f'key: "source_sha256" value: {{ string_value: "{digest}" }}' in config
    assert "tritonserver --model-repository" in (repository / "README.md").read_text()
    assert "tensorrt_plan" in (repository / "README.md").read_text()

    gpu = tmp_path / "gpu"
    args = ["export-triton", "--weights", str(narrow_weights), "--out", str(gpu), "--gpu"]
    assert main([*args, "--max-batch", "16"]) == 0
    config = (gpu / ENCODER_MODEL / "config.pbtxt").read_text()
    assert "kind: KIND_GPU" in config and "max_batch_size: 16" in config
    assert 'name : "tensorrt"' in config
    assert 'key: "precision_mode" value: "FP16"' in config
    assert 'key: "trt_engine_cache_enable" value: "1"' in config
    assert 'key: "trt_profile_max_shapes" value: "frames:16x1x5x88x88"' in config


def test_export_triton_refuses_to_overwrite_a_repository_or_a_file(
    repository, narrow_weights, tmp_path, capsys
):
    """Issue 24, rows 15 and 20: an existing repository was overwritten silently, an
    existing file was a FileExistsError traceback. Other models in OUT are left alone."""
    out = tmp_path / "repository"
    (out / "other_model" / "1").mkdir(parents=True)
    args = ["export-triton", "--weights", str(narrow_weights), "--out", str(out)]
    assert main(args) == 0  # beside another model: fine
    config = out / ENCODER_MODEL / "config.pbtxt"
    config.write_text("edited by hand")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --out {out} already holds a model repository "
        f"({ENCODER_MODEL}, {HEAD_MODEL}, README.md); give --force to replace it\n"
    )
    assert config.read_text() == "edited by hand"
    assert main([*args, "--force"]) == 0 and "max_batch_size" in config.read_text()
    assert (out / "other_model" / "1").is_dir()

    for target in (tmp_path / "file", tmp_path / "file" / "below"):
        (tmp_path / "file").write_text("not a folder")
        assert main([*args[:-1], str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --out {target}: ") and err.count("\n") == 1
        assert err.endswith("is a file, not a folder\n")


def test_scan_through_triton_equals_local_onnxruntime(capsys, server, narrow_weights, crops):
    local = scan_json(capsys, crops, "--weights", narrow_weights, "--backend", "onnxruntime")
    served = scan_json(
        capsys,
        crops,
        "--weights",
        narrow_weights,
        "--backend",
        "triton",
        "--triton-url",
        server.url,
    )
    assert served["backend"] == "triton" and served["clips"] == local["clips"] == 2
    assert np.allclose(served["clip_logits"], local["clip_logits"], rtol=1e-5, atol=1e-6)

    # no weights: no torch, no checkpoint (a subprocess in which torch cannot be imported)
    blocker = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from commands.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", blocker, "scan", str(crops), "--stride", "5", "--json"]
    done = subprocess.run(
        [*command, "--backend", "triton", "--triton-url", server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout)
    local = scan_json(
        capsys, crops, "--stride", "5", "--weights", narrow_weights, "--backend", "onnxruntime"
    )
    assert remote["clips"] == local["clips"] == 8
    assert np.allclose(remote["clip_logits"], local["clip_logits"], rtol=1e-5, atol=1e-6)


def test_thresholds_for_a_node_without_weights_must_name_the_served_models(
    capsys, server, narrow_weights, crops, tmp_path
):
    logits = scan_json(capsys, crops, "--weights", narrow_weights, "--backend", "onnxruntime")
    thresholds, _ = calibrate(
        [logits["clip_logits"]], [], stride=25, weights_sha256=file_sha256(narrow_weights)
    )
    path = save_thresholds(thresholds, tmp_path / "narrow.pth")
    node = ["--backend", "triton", "--triton-url", server.url]
    report = scan_json(capsys, crops, *node, "--thresholds", path)
    assert report["thresholds"] == str(path)

    other, _ = calibrate([logits["clip_logits"]], [], stride=25, weights_sha256="0" * 64)
    stale = save_thresholds(other, tmp_path / "other.pth")
    assert main(["scan", str(crops), *node, "--thresholds", str(stale)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: thresholds file {stale} was calibrated for other weights")
    assert err.count("\n") == 1


def test_models_exported_from_other_weights_are_refused(capsys, server, tmp_path, crops):
    other = save_checkpoint(tmp_path / "other.pth", narrow_model(seed=1))
    node = ["--backend", "triton", "--triton-url", server.url]
    assert main(["scan", str(crops), "--weights", str(other), *node]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: Triton at grpc://{server.url} serves models exported from")


def test_a_server_down_at_start_is_one_line_and_exit_2(capsys, tmp_path):
    url = f"127.0.0.1:{free_port()}"
    config = tmp_path / "node.toml"
    config.write_text(f'backend = "triton"\ntriton_url = "{url}"\ntriton_timeout = 2\n')
    for settings in (["--backend", "triton", "--triton-url", url], ["--config", str(config)]):
        code = main(["run", str(TALKING), *settings])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith(f"error: Triton at grpc://{url}: UNAVAILABLE: failed to connect")
    assert main(["run", str(TALKING), "--backend", "triton"]) == 2
    assert capsys.readouterr().err == "error: --backend triton needs --triton-url HOST:PORT\n"


def test_live_verdicts_through_triton_equal_local_onnxruntime(server, narrow_weights):
    async def logits(detector: Detector) -> dict[tuple[int, float], float]:
        found = {}
        async for event in detector.watch([str(TALKING)], LIVE):
            if isinstance(event, Verdict):
                found[event.face, event.pts[0]] = event.logit
        return found

    remote = Detector.load(backend="triton", triton=TritonTarget.parse(server.url))
    try:
        served = run(logits(remote))
    finally:
        remote.close()
    local = run(logits(Detector.load(narrow_weights, backend="onnxruntime")))
    assert served.keys() == local.keys() and len(local) >= 10
    keys = sorted(local)
    assert np.allclose([served[k] for k in keys], [local[k] for k in keys], rtol=1e-5, atol=1e-6)


def test_two_node_processes_share_the_servers_batches(server, tmp_path):
    before = _requests_and_executions(server)
    nodes = [
        subprocess.Popen(
            [sys.executable, "run_stream.py", "run", str(TALKING), "--stride", "5"]
            + ["--backend", "triton", "--triton-url", server.url]
            + ["--jsonl", str(tmp_path / f"node{i}.jsonl")],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for node in nodes:
        _, err = node.communicate(timeout=240)
        assert node.returncode == 0, err
    for i in range(2):
        events = [json.loads(line) for line in (tmp_path / f"node{i}.jsonl").read_text().split()]
        assert sum(e["type"] == "verdict" for e in events) >= 10
    after = _requests_and_executions(server)
    # a node has at most one request per model in flight (one batch at a time, each at most
    # the scheduler's 32 rows < max_batch_size 64), so an execution that ran more requests
    # than executions held requests of both nodes
    merged = {
        model: (after[model][0] - before[model][0]) - (after[model][1] - before[model][1])
        for model in after
    }
    assert max(merged.values()) > 0, (before, after)


def _requests_and_executions(server: TritonServer) -> dict[str, tuple[int, int]]:
    """Per model: (requests that succeeded, model executions), from Triton's statistics."""
    from engines.triton import TritonBackend

    backend = TritonBackend.connect(TritonTarget.parse(server.url))
    try:
        stats = backend.statistics()
    finally:
        backend.close()
    return {
        model: (
            int(found["inference_stats"]["success"].get("count", 0)),
            int(found.get("execution_count", 0)),
        )
        for model, found in stats.items()
    }


class LoopedClip:
    """A live source playing the talking clip over and over at 25 fps until closed."""

    live = True

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        with VideoFile(TALKING) as video:
            self._images = [rgb for _, rgb in video.frames()]
        self._closed = False

    async def frames(self, on_status: StatusCallback = ignore_status):
        index = 0
        while not self._closed:
            image = self._images[index % len(self._images)]
            yield Frame(self.stream_id, index / 25, image)
            index += 1
            await asyncio.sleep(0.04)

    async def close(self) -> None:
        self._closed = True


@pytest.mark.timeout(400)
def test_a_server_killed_mid_stream_degrades_the_node_until_it_returns(server):
    sink = ListSink()
    detector = Detector.load(backend="triton", triton=TritonTarget.parse(server.url, timeout=5))

    async def scenario() -> dict:
        pipeline = detector.pipeline(LIVE, [sink])
        source = LoopedClip("cam")
        pipeline.add_source(source)
        await _until(lambda: len(sink.of(Verdict)) >= 2)
        server.kill()
        await _until(lambda: pipeline.health()["status"] == "degraded")
        health = pipeline.health()
        assert any(r.startswith("inference backend triton unavailable") for r in health["reasons"])
        assert pipeline.metrics.value("lipforensics_backend_up") == 0
        await _until(lambda: pipeline.scheduler.dropped_windows["cam"] >= 3)
        verdicts_while_down = len(sink.of(Verdict))
        await asyncio.to_thread(server.start)
        await _until(lambda: any(e.status is Availability.OK for e in sink.of(BackendStatus)))
        await _until(lambda: len(sink.of(Verdict)) >= verdicts_while_down + 3)
        report = pipeline.health()
        up = pipeline.metrics.value("lipforensics_backend_up")
        dropped = pipeline.metrics.value("lipforensics_windows_dropped_total", stream="cam")
        await source.close()
        await pipeline.stop(drain=True)
        return {"health": report, "up": up, "dropped": dropped}

    try:
        found = run(scenario(), timeout=300)
    finally:
        detector.close()
    outage = sink.of(BackendStatus)
    assert [e.status for e in outage] == [Availability.DEGRADED, Availability.OK]
    assert outage[0].backend == "triton" and "UNAVAILABLE" in outage[0].detail
    streams = {e.stream for e in sink.events if not isinstance(e, BackendStatus)}
    assert streams == {"cam"}  # the outage is no stream's: no phantom stream ""
    assert found["up"] == 1
    assert not any(r.startswith("inference backend") for r in found["health"]["reasons"])
    dropped = found["health"]["streams"]["cam"]["windows_dropped"]
    assert dropped >= 3 and found["dropped"] == dropped
    # the outage's own count: windows lost while the server was down (a few more may be
    # dropped as stale just after it returns)
    during = int(re.search(r"; (\d+) windows dropped$", outage[1].detail).group(1))
    assert 1 <= during <= dropped


async def _until(condition, timeout: float = 60.0) -> None:
    """Wait until ``condition()`` holds (polling), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout:g} s")
        await asyncio.sleep(0.05)
