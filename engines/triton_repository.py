"""A Triton model repository of the two network stages, served by a stock Triton server.

    REPO/
      README.md                          how to serve it (and use TensorRT plans instead)
      lipforensics_encoder/config.pbtxt  frames (N, 1, 5, 88, 88) -> features (N, D)
      lipforensics_encoder/1/model.onnx
      lipforensics_head/config.pbtxt     features (N, 25, D) -> logits (N,)
      lipforensics_head/1/model.onnx

Each config: ``platform: "onnxruntime_onnx"``, ``max_batch_size``, a dynamic batcher, one
instance (CPU, or GPU), and the source checkpoint's SHA-256 in ``parameters`` (what a node
checks, :mod:`engines.triton`). With ``gpu`` the onnxruntime backend's TensorRT execution
accelerator runs the model in FP16 and caches its engines, so a GPU server runs TensorRT
without our code on it.

The batcher suits the scheduler: a node sends one request per stage at a time, of however
many rows are ready, so row counts rarely hit a preferred size; a short queue delay lets the
requests of other nodes join without making a lone request wait (they also join while the
instance is busy), and a full batch leaves at once.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engines import method
from engines.triton import ENCODER_MODEL, HEAD_MODEL, SHA256_PARAMETER
from errors import LipForensicsError

if TYPE_CHECKING:
    from engines.model import LipForensics

#: rows per request by default (the offline scan sends 64 encodings at a time).
DEFAULT_MAX_BATCH = 64
#: how long the batcher holds a request for others to join (a few ms: see the module doc).
QUEUE_DELAY_US = 2000
#: where the TensorRT accelerator keeps its engines on the server, by default.
DEFAULT_ENGINE_CACHE = "/tmp/lipforensics-trt-cache"
README = Path(__file__).with_name("triton_repository.md")


@dataclass(frozen=True, slots=True)
class Stage:
    """One served model: its name, ONNX file, input and output (name, dims per row)."""

    model: str
    onnx: Path
    input: tuple[str, tuple[int, ...]]
    output: tuple[str, tuple[int, ...]]


def write_repository(
    model: LipForensics,
    out: Path,
    *,
    source_sha256: str,
    max_batch: int = DEFAULT_MAX_BATCH,
    gpu: bool = False,
    engine_cache: str = DEFAULT_ENGINE_CACHE,
    force: bool = False,
) -> list[Path]:
    """Export ``model`` into the repository ``out`` (see the module doc); return the files
    written. Other models in ``out`` are left alone; our two model folders and README.md,
    if there, are replaced only with ``force``.

    Raises:
        LipForensicsError: ``out`` is not a folder or cannot be written, or it already holds
            our models and ``force`` is not given.
    """
    out = Path(out)
    check_repository_folder(out, force=force)
    try:
        return _write(model, out, source_sha256, max_batch, gpu, engine_cache)
    except OSError as error:
        raise LipForensicsError(f"cannot write the model repository {out}: {error}") from None


def check_repository_folder(out: Path, *, force: bool = False) -> None:
    """Refuse, in one line, an ``out`` that is a file (or under one), or that already holds
    what :func:`write_repository` writes, unless ``force``."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise LipForensicsError(f"--out {out}: {folder} is a file, not a folder")
    ours = [name for name in (ENCODER_MODEL, HEAD_MODEL, "README.md") if (out / name).exists()]
    if ours and not force:
        raise LipForensicsError(
            f"--out {out} already holds a model repository ({', '.join(ours)}); "
            "give --force to replace it"
        )


def _write(
    model: LipForensics,
    out: Path,
    source_sha256: str,
    max_batch: int,
    gpu: bool,
    engine_cache: str,
) -> list[Path]:
    """The writing half of :func:`write_repository`."""
    from engines import export  # PyTorch: only here (the command's --help needs none)

    out.mkdir(parents=True, exist_ok=True)
    size, frames, width = method.INPUT_SIZE, method.CLIP_FRAMES, model.config.feature_dim
    written = []
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        exported = export.export_model(model, Path(scratch), source_sha256=source_sha256)
        stages = (
            Stage(
                ENCODER_MODEL,
                exported.encoder,
                (export.ENCODER_INPUT, (1, 2 * method.FRAME_CONTEXT + 1, size, size)),
                (export.ENCODER_OUTPUT, (width,)),
            ),
            Stage(
                HEAD_MODEL,
                exported.head,
                (export.HEAD_INPUT, (frames, width)),
                (export.HEAD_OUTPUT, ()),
            ),
        )
        for stage in stages:
            folder = out / stage.model
            shutil.rmtree(folder, ignore_errors=True)
            (folder / "1").mkdir(parents=True)
            shutil.move(stage.onnx, folder / "1" / "model.onnx")
            config = folder / "config.pbtxt"
            config.write_text(
                model_config(stage, source_sha256, max_batch, gpu=gpu, engine_cache=engine_cache)
            )
            written += [config, folder / "1" / "model.onnx"]
    readme = out / "README.md"
    readme.write_text(README.read_text())
    return [*written, readme]


def model_config(
    stage: Stage, source_sha256: str, max_batch: int, *, gpu: bool, engine_cache: str
) -> str:
    """The ``config.pbtxt`` text of one stage."""
    (input_name, input_dims), (output_name, output_dims) = stage.input, stage.output
    lines = [
        f'name: "{stage.model}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch}",
        f"input [ {_tensor(input_name, input_dims)} ]",
        f"output [ {_tensor(output_name, output_dims)} ]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {max_batch} ]",
        f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}",
        "}",
        f"instance_group [ {{ count: 1 kind: {'KIND_GPU' if gpu else 'KIND_CPU'} }} ]",
        f'parameters {{ key: "{SHA256_PARAMETER}" value: {{ string_value: "{source_sha256}" }} }}',
    ]
    if gpu:
        lines += _tensorrt_accelerator(stage, max_batch, engine_cache)
    return "\n".join(lines) + "\n"


def _tensor(name: str, dims: tuple[int, ...]) -> str:
    """One tensor entry; a tensor with only the batch axis (one value per row) is declared
    as one value, reshaped to no dims, as Triton wants."""
    if not dims:
        return f'{{ name: "{name}" data_type: TYPE_FP32 dims: [ 1 ] reshape: {{ shape: [ ] }} }}'
    shape = ", ".join(map(str, dims))
    return f'{{ name: "{name}" data_type: TYPE_FP32 dims: [ {shape} ] }}'


def _tensorrt_accelerator(stage: Stage, max_batch: int, engine_cache: str) -> list[str]:
    """The onnxruntime backend's TensorRT accelerator: FP16, engines cached on the server,
    one profile over every batch size (no rebuild when the batch size changes)."""
    name, dims = stage.input

    def shape(batch: int) -> str:
        return f"{name}:{'x'.join(map(str, (batch, *dims)))}"

    parameters = {
        "precision_mode": "FP16",
        "max_workspace_size_bytes": str(1 << 30),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": f"{engine_cache}/{stage.model}",
        "trt_profile_min_shapes": shape(1),
        "trt_profile_opt_shapes": shape(max(1, max_batch // 2)),
        "trt_profile_max_shapes": shape(max_batch),
    }
    body = [f'      parameters {{ key: "{k}" value: "{v}" }}' for k, v in parameters.items()]
    return [
        "optimization { execution_accelerators {",
        "  gpu_execution_accelerator : [ {",
        '      name : "tensorrt"',
        *body,
        "  } ]",
        "} }",
    ]
