"""TensorRT engines for the two network stages, built from our ONNX and cached on disk.

The only module that touches ``tensorrt`` and ``pycuda``, and only inside functions, so
everything else imports and runs on machines without them (install with ``pip install
.[gpu]``; TensorRT's wheels come from NVIDIA's own package index).

Precision by TensorRT version:

- TensorRT 10 still has ``BuilderFlag.FP16``: a weakly typed network parsed from the FP32
  ONNX, with the FP16 flag, lets TensorRT pick FP16 kernels where it likes.
- TensorRT 11 removed the precision flags: every network is strongly typed, so FP16 comes
  from the ONNX itself (the FP16 copy that :func:`engines.export.to_fp16` writes, inputs and
  outputs kept FP32).
- FP32 (both versions): a strongly typed network from the FP32 ONNX, no flags.
- INT8 (both versions): a strongly typed network from a Q/DQ ONNX
  (:mod:`engines.quantize`), no precision flags, as NVIDIA documents for explicit
  quantization.

Engines are not portable across GPU models or TensorRT versions: :class:`EngineKey` names a
cached engine by GPU name, compute capability, TensorRT version, ONNX hash, optimisation
profile and precision, so a second start loads the engine instead of rebuilding it.

The runtime uses pycuda without ``pycuda.autoinit`` (which would grab a context at import):
:class:`CudaDevice` retains the device's primary context, the one the CUDA runtime inside
TensorRT also uses, and makes it current around each call. Each :class:`TensorRTStage` owns
one execution context, one CUDA stream and pinned host buffers sized for its largest batch;
inference is ``set_input_shape`` + ``set_tensor_address`` + ``execute_async_v3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from engines.precision import FP16, check_precision_name
from errors import LipForensicsError

_WORKSPACE_BYTES = 2 << 30


def import_tensorrt() -> tuple[ModuleType, ModuleType]:
    """``(tensorrt, pycuda.driver)`` with the driver initialised, or a clear error saying why not.

    Raises:
        LipForensicsError: TensorRT or pycuda is not installed, or no NVIDIA GPU is visible.
    """
    try:
        import tensorrt as trt
    except ImportError as error:
        raise LipForensicsError(
            f"TensorRT is not installed ({error}); install the GPU extra with "
            "'pip install .[gpu]' on a machine with an NVIDIA GPU, or use --backend onnxruntime"
        ) from None
    try:
        import pycuda.driver as cuda
    except ImportError as error:
        raise LipForensicsError(
            f"pycuda is not installed ({error}); TensorRT needs it here for GPU buffers: "
            "'pip install .[gpu]'"
        ) from None
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as error:
        raise LipForensicsError(f"no usable NVIDIA GPU: the CUDA driver says {error}") from None
    if count == 0:
        raise LipForensicsError("no NVIDIA GPU found (the CUDA driver sees 0 devices)")
    return trt, cuda


def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT backend cannot run here, or ``None`` when it can."""
    try:
        import_tensorrt()
    except LipForensicsError as error:
        return str(error)
    return None


def strongly_typed_only(trt: ModuleType) -> bool:
    """True for TensorRT 11 and later, where ``BuilderFlag.FP16`` no longer exists."""
    return not hasattr(trt.BuilderFlag, "FP16")


@dataclass(frozen=True, slots=True)
class BatchProfile:
    """The batch sizes one engine accepts: TensorRT tunes kernels for ``opt``.

    Attributes:
        input_name: the ONNX input the profile applies to.
        item_shape: the input's shape without the batch axis.
        min_batch, opt_batch, max_batch: smallest, tuned-for and largest batch.
    """

    input_name: str
    item_shape: tuple[int, ...]
    min_batch: int = 1
    opt_batch: int = 32
    max_batch: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise LipForensicsError(
                f"batch profile needs 1 <= min <= opt <= max, got "
                f"{self.min_batch}/{self.opt_batch}/{self.max_batch}"
            )

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The (min, opt, max) input shapes for ``IOptimizationProfile.set_shape``."""
        batches = (self.min_batch, self.opt_batch, self.max_batch)
        low, opt, high = ((b, *self.item_shape) for b in batches)
        return low, opt, high


@dataclass(frozen=True, slots=True)
class EngineKey:
    """Everything a built engine depends on; a change in any part means a rebuild.

    Attributes:
        gpu_name: the device name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        compute_capability: ``(major, minor)``.
        tensorrt_version: ``tensorrt.__version__``.
        onnx_sha256: hash of the ONNX file the engine was built from.
        profile: the optimisation profile.
        precision: one of :data:`engines.precision.PRECISIONS`.
    """

    gpu_name: str
    compute_capability: tuple[int, int]
    tensorrt_version: str
    onnx_sha256: str
    profile: BatchProfile
    precision: str

    def digest(self) -> str:
        """A stable hex digest of every field."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def filename(self, stage: str) -> str:
        """The engine's file name inside the cache folder."""
        return f"{stage}-{self.precision}-{self.digest()[:20]}.engine"


class CudaDevice:
    """A CUDA device's primary context, made current with ``with device:``.

    Re-entrant per thread (push/pop nest), so the scheduler's worker threads can each use it.
    """

    def __init__(self, index: int = 0) -> None:
        _, cuda = import_tensorrt()
        if not 0 <= index < cuda.Device.count():
            raise LipForensicsError(
                f"no CUDA device {index}: {cuda.Device.count()} device(s) visible"
            )
        self._cuda = cuda
        self._device = cuda.Device(index)
        self._context = self._device.retain_primary_context()

    @property
    def name(self) -> str:
        """The device name as the driver reports it."""
        return str(self._device.name())

    @property
    def compute_capability(self) -> tuple[int, int]:
        """``(major, minor)``."""
        major, minor = self._device.compute_capability()
        return int(major), int(minor)

    def __enter__(self) -> CudaDevice:
        self._context.push()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cuda.Context.pop()


def engine_key(
    device: CudaDevice, onnx_path: Path, profile: BatchProfile, precision: str
) -> EngineKey:
    """The cache key of an engine built on ``device`` from ``onnx_path``."""
    trt, _ = import_tensorrt()
    return EngineKey(
        gpu_name=device.name,
        compute_capability=device.compute_capability,
        tensorrt_version=str(trt.__version__),
        onnx_sha256=hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest(),
        profile=profile,
        precision=precision,
    )


def build_engine(
    onnx_path: Path,
    profile: BatchProfile,
    *,
    precision: str,
    timing_cache: Path,
    device: CudaDevice,
) -> bytes:
    """Compile ``onnx_path`` into a serialized engine for ``device``.

    ``precision`` is a name of :data:`engines.precision.PRECISIONS`; ``onnx_path`` must
    match the precision plan (see the module doc): the FP32 ONNX for ``fp32`` and for
    ``fp16`` on TensorRT 10, the FP16 ONNX for ``fp16`` on TensorRT 11, a Q/DQ ONNX for
    ``int8``. ``timing_cache`` is read when it exists and rewritten after the build, so
    later builds of similar layers are fast.

    Raises:
        LipForensicsError: unknown precision, an ONNX TensorRT cannot parse, a failed build.
    """
    check_precision_name(precision)
    trt, _ = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    with device:
        builder = trt.Builder(logger)
        weak_fp16 = precision == FP16 and not strongly_typed_only(trt)
        network = builder.create_network(0 if weak_fp16 else _strongly_typed_flags(trt))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise LipForensicsError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, _WORKSPACE_BYTES)
        if weak_fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        optimisation = builder.create_optimization_profile()
        optimisation.set_shape(profile.input_name, *profile.shapes())
        config.add_optimization_profile(optimisation)
        cache_bytes = timing_cache.read_bytes() if timing_cache.exists() else b""
        config.set_timing_cache(config.create_timing_cache(cache_bytes), False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise LipForensicsError(f"TensorRT failed to build an engine from {onnx_path}")
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(config.get_timing_cache().serialize())
        return bytes(memoryview(plan))


def _strongly_typed_flags(trt: ModuleType) -> int:
    """``create_network`` flags for a strongly typed network (the flag is a no-op in 11)."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def cached_engine(
    stage: str,
    onnx_path: Path,
    profile: BatchProfile,
    *,
    precision: str,
    cache_dir: Path,
    device: CudaDevice,
) -> Path:
    """The engine file for ``stage``, built only when the cache has none for its key."""
    key = engine_key(device, onnx_path, profile, precision)
    path = Path(cache_dir) / key.filename(stage)
    if not path.exists():
        timing = Path(cache_dir) / f"timing-{_device_slug(key)}.cache"
        plan = build_engine(
            onnx_path, profile, precision=precision, timing_cache=timing, device=device
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(plan)
        partial.replace(path)
    return path


def _device_slug(key: EngineKey) -> str:
    """Timing caches are per GPU and TensorRT version: a short name for that pair."""
    text = f"{key.gpu_name}|{key.compute_capability}|{key.tensorrt_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TensorRTStage:
    """One deserialized engine with its execution context, CUDA stream and buffers.

    :meth:`run` takes a float32 batch of any size (split into chunks of at most
    ``max_batch``) and returns float32 outputs. Calls are serialised with a lock: one
    execution context cannot run two batches at once.
    """

    def __init__(self, engine_path: Path, device: CudaDevice) -> None:
        trt, cuda = import_tensorrt()
        self._cuda = cuda
        self._device = device
        self._lock = threading.Lock()
        with device:
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
            if self._engine is None:
                raise LipForensicsError(
                    f"TensorRT cannot load {engine_path}: built by another TensorRT version or "
                    "for another GPU? Delete it to rebuild"
                )
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._input, self._output = _io_names(trt, self._engine)
            max_shape = tuple(self._engine.get_tensor_profile_shape(self._input, 0)[2])
            self.max_batch = int(max_shape[0])
            self._context.set_input_shape(self._input, max_shape)
            out_shape = tuple(self._context.get_tensor_shape(self._output))
            self._host_in = cuda.pagelocked_empty(max_shape, _dtype(trt, self._engine, self._input))
            self._host_out = cuda.pagelocked_empty(
                out_shape, _dtype(trt, self._engine, self._output)
            )
            self._device_in = cuda.mem_alloc(self._host_in.nbytes)
            self._device_out = cuda.mem_alloc(self._host_out.nbytes)
            self._context.set_tensor_address(self._input, int(self._device_in))
            self._context.set_tensor_address(self._output, int(self._device_out))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The engine's output for ``batch`` (float32, first axis = batch)."""
        parts = [
            self._run_chunk(batch[start : start + self.max_batch])
            for start in range(0, len(batch), self.max_batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        n = len(chunk)
        cuda = self._cuda
        with self._lock, self._device:
            self._host_in[:n] = chunk
            self._context.set_input_shape(self._input, (n, *self._host_in.shape[1:]))
            cuda.memcpy_htod_async(self._device_in, self._host_in[:n], self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            cuda.memcpy_dtoh_async(self._host_out[:n], self._device_out, self._stream)
            self._stream.synchronize()
            return self._host_out[:n].astype(np.float32, copy=True)


def _io_names(trt: ModuleType, engine: Any) -> tuple[str, str]:
    """The single input and single output tensor names of one of our stage engines."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise LipForensicsError(f"expected one input and one output, got {inputs} / {outputs}")
    return inputs[0], outputs[0]


def _dtype(trt: ModuleType, engine: Any, name: str) -> np.dtype:
    return np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
