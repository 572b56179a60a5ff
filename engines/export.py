"""PyTorch -> ONNX, one file per network stage, with a dynamic batch axis.

- ``frame_encoder.onnx``: ``frames`` (N, 1, 5, 88, 88) -> ``features`` (N, 512), the
  frame-once encoder (:meth:`engines.model.FrameEncoder.encode_frames`).
- ``temporal_head.onnx``: ``features`` (N, 25, 512) -> ``logits`` (N,), every convolution
  a matrix product (:mod:`engines.matmul_head`: about 40% less CPU in ONNX Runtime).

Both are exported from eval-mode modules with constant folding, so every BatchNorm that
follows a convolution is folded into it, and checked with the ONNX checker. Each file
carries metadata (:func:`read_metadata`): the source checkpoint's SHA-256, the input
normalisation constants, the opset, the model config and the stage.

A pitfall this module avoids: ``torch.onnx.export`` puts the exported module in eval mode and
afterwards calls ``train(previous_mode)`` on it, which is *recursive*. Exporting through a
fresh wrapper module (``training=True`` by default) therefore flips the wrapped network back
into training mode (batch statistics, dropout) for everything that runs after the export.
:func:`_exporting` puts the wrapper in eval mode first and restores every module's own flag
afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines import method
from engines.cache import readable_onnx, usable_cache_dir, warn_rebuilt, written_in_place
from engines.matmul_head import MatMulHead
from engines.model import LipForensics
from errors import LipForensicsError

#: ONNX opset of the exported files (TensorRT 10/11 and ONNX Runtime >= 1.18 support it).
OPSET = 17
#: bump when the exported graphs change, so cached exports are redone.
EXPORT_FORMAT = 2

ENCODER_FILE = "frame_encoder.onnx"
HEAD_FILE = "temporal_head.onnx"
ENCODER_INPUT, ENCODER_OUTPUT = "frames", "features"
HEAD_INPUT, HEAD_OUTPUT = "features", "logits"
#: metadata keys carry this prefix.
META_PREFIX = "lipforensics."


@dataclass(frozen=True, slots=True)
class ExportedModel:
    """The two ONNX files of one model, and the metadata both carry."""

    encoder: Path
    head: Path
    metadata: dict[str, str]


class _EncodeFrames(nn.Module):
    """``FrameEncoder.encode_frames`` as a traceable ``forward``, in its fastest exact form.

    On a five-frame window the front end's 5x7x7 convolution has exactly one output time
    step, so it *is* a 2D 7x7 convolution whose five input channels are the five frames.
    Exported that way, with its BatchNorm folded into the weights here (the exporter folds
    the trunk's), ONNX Runtime and TensorRT run fast 2D kernels instead of generic 3D ones;
    the numbers are the same up to float32 rounding (the parity tests check it).
    """

    def __init__(self, model: LipForensics) -> None:
        super().__init__()
        conv, batchnorm, prelu, pool = model.encoder.frontend3D
        with torch.no_grad():
            scale = batchnorm.weight / torch.sqrt(batchnorm.running_var + batchnorm.eps)
            weight = conv.weight.squeeze(1) * scale[:, None, None, None]  # C x 5 x 7 x 7
            bias = batchnorm.bias - batchnorm.running_mean * scale
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())
        self.stride, self.padding = conv.stride[1:], conv.padding[1:]
        self.prelu = prelu
        self.pool = nn.MaxPool2d(pool.kernel_size[1:], pool.stride[1:], pool.padding[1:])
        self.trunk = model.encoder.trunk

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.squeeze(1)  # N x 1 x 5 x H x W -> N x 5 x H x W
        x = F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        return self.trunk(self.pool(self.prelu(x)))


def metadata_for(model: LipForensics, source_sha256: str) -> dict[str, str]:
    """The metadata written into both files (keys without :data:`META_PREFIX`)."""
    return {
        "source_sha256": source_sha256,
        "normalisation_mean": repr(method.MEAN),
        "normalisation_std": repr(method.STD),
        "input_size": str(method.INPUT_SIZE),
        "clip_frames": str(method.CLIP_FRAMES),
        "opset": str(OPSET),
        "export_format": str(EXPORT_FORMAT),
        "model_config": json.dumps(model.config.to_dict(), sort_keys=True),
    }


def export_model(model: LipForensics, out_dir: Path, *, source_sha256: str) -> ExportedModel:
    """Export both stages of ``model`` into ``out_dir`` and check them.

    ``source_sha256`` names the weights (:func:`engines.digest.file_sha256` of the checkpoint, or
    :func:`state_dict_sha256` for weights that never were a file). The model's train/eval
    flags are left exactly as they were.
    """
    out_dir = Path(out_dir)
    config = model.config
    meta = metadata_for(model, source_sha256)
    size = method.INPUT_SIZE
    frames = torch.zeros(2, 1, 2 * method.FRAME_CONTEXT + 1, size, size)
    features = torch.zeros(2, method.CLIP_FRAMES, config.feature_dim)
    encoder = _export(
        _EncodeFrames(model),
        frames,
        out_dir / ENCODER_FILE,
        (ENCODER_INPUT, ENCODER_OUTPUT),
        {**meta, "stage": "frame_encoder"},
    )
    head = _export(
        MatMulHead(model.head),
        features,
        out_dir / HEAD_FILE,
        (HEAD_INPUT, HEAD_OUTPUT),
        {**meta, "stage": "temporal_head"},
    )
    return ExportedModel(encoder=encoder, head=head, metadata=meta)


def _export(
    module: nn.Module, example: Tensor, path: Path, names: tuple[str, str], meta: dict[str, str]
) -> Path:
    """Trace ``module`` in eval mode with a dynamic first axis, add ``meta``, check, and
    only then move the file to ``path`` (so a file at ``path`` is always complete; a write
    that fails leaves nothing and is one :class:`~engines.cache.CacheError` line)."""
    input_name, output_name = names
    with written_in_place(path) as partial:
        with _exporting(module), torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter warns that it is legacy; it needs no extra package
            # and folds BatchNorm into the convolutions, which is what we want here
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(partial),
                dynamo=False,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
            )
        _finish(partial, meta)
    return path


@contextlib.contextmanager
def _exporting(module: nn.Module) -> Iterator[None]:
    """Eval mode for ``module`` and everything under it; each module's own flag comes back."""
    modules = list(module.modules())
    flags = [m.training for m in modules]
    module.eval()
    try:
        yield
    finally:
        for m, flag in zip(modules, flags, strict=True):
            m.training = flag


def _finish(path: Path, meta: dict[str, str]) -> None:
    """Write the metadata and run the ONNX checker on the file."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, value
    proto.producer_name = "lipforensics-live"
    onnx.save(proto, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise LipForensicsError(f"exported {path.name} fails the ONNX checker: {error}") from None


def read_metadata(path: Path) -> dict[str, str]:
    """The ``lipforensics.*`` metadata of an exported file, without the prefix."""
    proto = onnx.load(str(path), load_external_data=False)
    return {
        p.key.removeprefix(META_PREFIX): p.value
        for p in proto.metadata_props
        if p.key.startswith(META_PREFIX)
    }


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 over a model's state dict (names, shapes and values), for in-memory weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where exports and engines are cached: ``$LIPFORENSICS_CACHE`` or the user cache; a
    temporary folder, with a warning, when that one cannot be written
    (:func:`engines.cache.usable_cache_dir`)."""
    root = os.environ.get("LIPFORENSICS_CACHE")
    return usable_cache_dir(Path(root) if root else Path.home() / ".cache" / "lipforensics-live")


def cached_export(model: LipForensics, cache_dir: Path, *, source_sha256: str) -> ExportedModel:
    """Like :func:`export_model`, but reuses an earlier export of the same weights.

    The cache folder is keyed by the weights' hash, the model config, the opset and
    :data:`EXPORT_FORMAT`, so a second start does not export again. A cached file that
    does not parse or does not carry this metadata (corrupted on disk) is exported again,
    with a warning.
    """
    meta = metadata_for(model, source_sha256)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache_dir) / "onnx" / key
    encoder, head = folder / ENCODER_FILE, folder / HEAD_FILE
    if encoder.exists() and head.exists():  # complete when written (see _export)
        expected = {META_PREFIX + k: v for k, v in meta.items()}
        corrupt = [p for p in (encoder, head) if not _carries(readable_onnx(p), expected)]
        if not corrupt:
            return ExportedModel(encoder=encoder, head=head, metadata=meta)
        for path in corrupt:
            warn_rebuilt(path)
    return export_model(model, folder, source_sha256=source_sha256)


def _carries(found: dict[str, str] | None, expected: dict[str, str]) -> bool:
    """Whether an ONNX file's metadata (None: unreadable) holds every ``expected`` entry."""
    return found is not None and all(found.get(k) == v for k, v in expected.items())


def to_fp16(source: Path, target: Path) -> Path:
    """An FP16 copy of an exported FP32 file, inputs and outputs kept FP32.

    This is the ONNX a strongly typed TensorRT network (TensorRT 11) builds an FP16 engine
    from; metadata is carried over.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = OnnxModel(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True))
    half.topological_sort()  # the converter appends its input casts at the end of the graph
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(half.model, str(target))
    onnx.checker.check_model(str(target))
    return target
