"""One small inference interface and its local implementations: :class:`TorchBackend`
(PyTorch on the CPU, or on an NVIDIA GPU in FP16 or FP32), :class:`OnnxRuntimeBackend` and
:class:`TensorRTBackend`; the remote one, a Triton Inference Server, is
:class:`engines.triton.TritonBackend`. Which name builds which, in which precision, is
:mod:`engines.registry`.

Every backend does the two stages of the network on float32 numpy arrays:

- ``encode_frames(frames)``: (N, 1, 5, 88, 88) five-frame windows -> (N, D) features, the
  frame-once encoder (see :func:`engines.frames.five_frame_inputs`);
- ``head(features)``: (N, 25, D) -> (N,) logits.

The ONNX Runtime and TensorRT backends run the exported ONNX, cached on disk by the weights'
hash (:func:`engines.export.cached_export`), so a second start neither exports nor builds
again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from engines.frames import five_frame_inputs, window_keys
from engines.precision import FP16


class Backend(Protocol):
    """What the scheduler and ``scan`` need from an inference engine.

    Attributes:
        name: the backend's name in :data:`engines.registry.REGISTRY` (``"torch"``,
            ``"torch-cuda"``, ``"onnxruntime"``, ``"tensorrt"``) or ``"triton"``.
    """

    name: str

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, 1, 5, 88, 88) float32 -> (N, D) float32 per-frame features."""
        ...

    def head(self, features: np.ndarray) -> np.ndarray:
        """(N, T, D) float32 -> (N,) float32 logits."""
        ...


def clip_logits(backend: Backend, clips: np.ndarray) -> np.ndarray:
    """(B, T, 88, 88) normalised clips -> (B,) logits, frame-once: the paper's clip logits."""
    if len(clips) == 0:
        return np.zeros((0,), np.float32)
    keys = window_keys(0, clips.shape[1])
    windows = np.concatenate([five_frame_inputs(clip, keys, dtype=clips.dtype) for clip in clips])
    features = backend.encode_frames(windows)
    return backend.head(features.reshape(len(clips), clips.shape[1], -1))


class TorchBackend:
    """The PyTorch network itself: CPU FP32, or another device / half precision on a copy
    (the caller's model is never converted). ``threads`` sets PyTorch's CPU threads, which
    are process-wide (None: leave them as they are)."""

    name = "torch"

    def __init__(
        self, model: object, device: str = "cpu", half: bool = False, threads: int | None = None
    ) -> None:
        import copy

        import torch

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._dtype = torch.float16 if half else torch.float32
        self._device = torch.device(device)
        self.name = "torch" if self._device.type == "cpu" else f"torch-{self._device.type}"
        if half or self._device.type != "cpu":
            model = copy.deepcopy(model).to(self._device, self._dtype)
        self._model = model.eval()

    def _run(self, function: object, array: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(array, np.float32))
            out = function(tensor.to(self._device, self._dtype))
        return out.float().cpu().numpy()

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        return self._run(self._model.encoder.encode_frames, frames)

    def head(self, features: np.ndarray) -> np.ndarray:
        return self._run(self._model.head, features)


def ort_session_options(threads: int | None = None) -> object:
    """ONNX Runtime options for our small CPUs: all graph optimisations, one thread pool of
    ``threads`` (default: the cores this process may use), sequential execution, and worker
    threads that sleep instead of spinning between calls (on two cores, spinning threads
    steal the time that decoding and landmarks need)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRuntimeBackend:
    """ONNX Runtime sessions over the two exported files (CUDA provider when installed).

    ``int8`` is the INT8 network's check against FP32 (an :class:`engines.int8_cpu.Int8Check`)
    when the files are the INT8 ones (set by :mod:`engines.registry`), else None."""

    name = "onnxruntime"
    int8: object | None = None

    def __init__(self, encoder: Path, head: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider",) if p in available]
        providers.append("CPUExecutionProvider")
        options = ort_session_options(threads)
        self._encoder = ort.InferenceSession(str(encoder), options, providers=providers)
        self._head = ort.InferenceSession(str(head), options, providers=providers)
        self.providers = self._encoder.get_providers()

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        return _run_session(self._encoder, frames)

    def head(self, features: np.ndarray) -> np.ndarray:
        return _run_session(self._head, features)


def _run_session(session: object, array: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(array, np.float32)})[0]


class TensorRTBackend:
    """Two TensorRT engines (FP16 by default), built once per GPU and cached."""

    name = "tensorrt"

    def __init__(
        self,
        encoder: Path,
        head: Path,
        *,
        cache_dir: Path,
        precision: str = FP16,
        max_batch: int = 256,
        opt_batch: int = 32,
        device_index: int = 0,
    ) -> None:
        from engines import export, method, tensorrt

        trt, _ = tensorrt.import_tensorrt()
        device = tensorrt.CudaDevice(device_index)
        if precision == FP16 and tensorrt.strongly_typed_only(trt):
            # TensorRT 11: no FP16 flag, the precision comes from an FP16 ONNX
            encoder = _fp16_copy(encoder, export)
            head = _fp16_copy(head, export)
        size, frames = method.INPUT_SIZE, method.CLIP_FRAMES
        feature_dim = int(_onnx_output_dim(encoder))
        profiles = {
            "frame_encoder": (encoder, (1, 5, size, size), export.ENCODER_INPUT),
            "temporal_head": (head, (frames, feature_dim), export.HEAD_INPUT),
        }
        self._stages = {}
        for stage, (onnx_path, item_shape, input_name) in profiles.items():
            profile = tensorrt.BatchProfile(
                input_name, item_shape, opt_batch=min(opt_batch, max_batch), max_batch=max_batch
            )
            engine = tensorrt.cached_engine(
                stage,
                onnx_path,
                profile,
                precision=precision,
                cache_dir=Path(cache_dir) / "tensorrt",
                device=device,
            )
            self._stages[stage] = tensorrt.TensorRTStage(engine, device)
        self.device_name = device.name

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        return self._stages["frame_encoder"].run(np.asarray(frames, np.float32))

    def head(self, features: np.ndarray) -> np.ndarray:
        return self._stages["temporal_head"].run(np.asarray(features, np.float32))


def _fp16_copy(path: Path, export: object) -> Path:
    target = path.with_name(path.stem + ".fp16.onnx")
    return target if target.exists() else export.to_fp16(path, target)


def _onnx_output_dim(path: Path) -> int:
    import onnx

    output = onnx.load(str(path), load_external_data=False).graph.output[0]
    return output.type.tensor_type.shape.dim[-1].dim_value
