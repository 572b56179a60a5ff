"""Backends as data: each name maps to the precisions it runs, each precision to a factory
of one signature (an :class:`EngineRequest` in, a :class:`~engines.backends.Backend` out),
and to why it cannot run on this machine (None: it can).

- ``torch`` (fp32): PyTorch on the CPU;
- ``torch-cuda`` (fp16, fp32): PyTorch on an NVIDIA GPU;
- ``onnxruntime`` (fp32, int8): ONNX Runtime on the exported ONNX (the CPU, or CUDA when
  its provider is installed); int8 is calibrated on genuine crops and checked against
  fp32 (:mod:`engines.int8_cpu`);
- ``tensorrt`` (fp16, fp32): TensorRT engines built for this GPU and cached.

The first precision of each is its own, used when none is asked for. ``auto`` is the first
of :data:`AUTO_ORDER` that can run here. ``triton`` (a Triton server, :mod:`engines.triton`)
is not built from a network but connected to: :meth:`stream.detector.Detector.load` does it.
A new backend is a class in :mod:`engines.backends` (or its own module) and a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.backends import OnnxRuntimeBackend, TensorRTBackend, TorchBackend
from engines.precision import FP16, FP32, INT8, check_precision_name
from errors import LipForensicsError, MediaError

if TYPE_CHECKING:
    from engines.backends import Backend
    from engines.model import LipForensics

#: the backend that runs on a Triton server rather than from a network in memory.
REMOTE = "triton"


@dataclass(frozen=True)
class EngineRequest:
    """Everything a backend factory may need.

    Attributes:
        model: the network, in eval mode on the CPU.
        source_sha256: the weight file's hash: the key of the export and engine caches.
        precision: one of the backend's precisions (None: its own).
        threads: CPU threads for inference (None: the backend's default).
        cache_dir: where exports and engines are cached (None: ``$LIPFORENSICS_CACHE`` or
            the user cache).
        calibration: the genuine crops ``.npy`` or video that INT8 is calibrated on.
        crops: reads ``calibration``'s uint8 (T, 96, 96) crops; called only when no INT8
            network for it is cached yet.
        max_batch: the largest batch a TensorRT engine takes.
    """

    model: LipForensics
    source_sha256: str
    precision: str | None = None
    threads: int | None = None
    cache_dir: Path | None = None
    calibration: Path | None = None
    crops: Callable[[], np.ndarray] | None = None
    max_batch: int = 256

    def cache(self) -> Path:
        """The cache folder to use."""
        from engines.export import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def exported(self) -> object:
        """The network's ONNX export (:class:`engines.export.ExportedModel`), cached."""
        from engines.export import cached_export

        return cached_export(self.model, self.cache(), source_sha256=self.source_sha256)


Factory = Callable[[EngineRequest], "Backend"]


@dataclass(frozen=True)
class BackendEntry:
    """One backend: a factory per precision (the first is its own), and why it cannot run
    here (``unavailable()`` returns the reason, or None)."""

    factories: dict[str, Factory]
    unavailable: Callable[[], str | None] = lambda: None

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions it runs, its own first."""
        return tuple(self.factories)


def cuda_unavailable_reason() -> str | None:
    """Why PyTorch cannot run on an NVIDIA GPU here, or None when it can."""
    import torch

    if not torch.backends.cuda.is_built():
        return "this PyTorch is a CPU build (install a CUDA build of torch)"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA GPU"
    return None


def tensorrt_unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (not installed, no pycuda, no GPU), or None."""
    from engines.tensorrt import tensorrt_unavailable_reason as reason

    return reason()


def _torch(request: EngineRequest) -> Backend:
    return TorchBackend(request.model, threads=request.threads)


def _torch_cuda(request: EngineRequest) -> Backend:
    return TorchBackend(request.model, device="cuda", half=request.precision == FP16)


def _onnxruntime(request: EngineRequest) -> Backend:
    exported = request.exported()
    return OnnxRuntimeBackend(exported.encoder, exported.head, threads=request.threads)


def _onnxruntime_int8(request: EngineRequest) -> Backend:
    """The INT8 network calibrated on ``request.calibration``, cached by the weights' and
    the calibration file's hashes; its check against FP32 is the backend's ``int8``."""
    from engines.digest import file_sha256
    from engines.int8_cpu import cached_cpu_int8

    if request.calibration is None or request.crops is None:
        raise LipForensicsError("--precision int8 needs --int8-calibration CROPS.npy|VIDEO")
    calibration = Path(request.calibration)
    if not calibration.is_file():
        raise MediaError(
            f"INT8 calibration file not found: {calibration} "
            "(expected genuine crops .npy from `crops`, or a genuine video)"
        )
    backend, check = cached_cpu_int8(
        request.exported(),
        request.cache(),
        calibration_sha256=file_sha256(calibration),
        crops=request.crops,
        threads=request.threads,
    )
    backend.int8 = check
    return backend


def _tensorrt(request: EngineRequest) -> Backend:
    exported = request.exported()
    return TensorRTBackend(
        exported.encoder,
        exported.head,
        cache_dir=request.cache(),
        precision=request.precision,
        max_batch=request.max_batch,
    )


#: every backend built from a network in memory, by name.
REGISTRY: dict[str, BackendEntry] = {
    "torch": BackendEntry({FP32: _torch}),
    "torch-cuda": BackendEntry({FP16: _torch_cuda, FP32: _torch_cuda}, cuda_unavailable_reason),
    "onnxruntime": BackendEntry({FP32: _onnxruntime, INT8: _onnxruntime_int8}),
    "tensorrt": BackendEntry({FP16: _tensorrt, FP32: _tensorrt}, tensorrt_unavailable_reason),
}
#: what ``auto`` tries, in order: the first that can run here.
AUTO_ORDER = ("tensorrt", "torch-cuda", "onnxruntime")
#: names accepted by ``--backend`` and the ``backend`` setting.
BACKENDS = ("auto", *REGISTRY, REMOTE)


def resolve_backend_name(name: str) -> str:
    """The concrete backend ``name`` stands for (``"auto"`` resolved), or a clear error."""
    if name not in BACKENDS:
        raise LipForensicsError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    return next(n for n in AUTO_ORDER if REGISTRY[n].unavailable() is None)


def resolve_precision(name: str, precision: str | None) -> str:
    """The precision backend ``name`` runs when asked for ``precision`` (None: its own).

    Raises:
        LipForensicsError: an unknown name, or a precision the backend does not run.
    """
    if precision is not None:
        check_precision_name(precision)
    resolved = resolve_backend_name(name)
    if resolved == REMOTE:
        if precision not in (None, FP32):
            raise LipForensicsError(
                f"--precision {precision} is the server's choice with --backend triton "
                "(export-triton --gpu serves FP16)"
            )
        return FP32
    runs = REGISTRY[resolved].precisions
    if precision is None:
        return runs[0]
    if precision not in runs:
        hint = " (TensorRT INT8 engines: build-engine --int8)" if precision == INT8 else ""
        raise LipForensicsError(
            f"--backend {resolved} runs {', '.join(runs)}, not --precision {precision}{hint}"
        )
    return precision


def build_backend(name: str, request: EngineRequest) -> Backend:
    """The backend ``name`` (``"auto"`` resolved) for ``request``'s network and precision.

    Raises:
        LipForensicsError: an unknown name, ``triton`` (it runs on a server), a precision
            the backend does not run, or a backend that cannot run here (the message says
            why: not installed, no GPU).
    """
    resolved = resolve_backend_name(name)
    if resolved == REMOTE:
        raise LipForensicsError("the triton backend runs on a server: give --triton-url")
    entry = REGISTRY[resolved]
    precision = resolve_precision(resolved, request.precision)
    if (reason := entry.unavailable()) is not None:
        raise LipForensicsError(f"cannot use --backend {resolved}: {reason}")
    return entry.factories[precision](replace(request, precision=precision))
