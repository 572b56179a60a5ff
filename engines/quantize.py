"""INT8 for both engines, calibrated on genuine mouth windows.

The calibration data are mouth crops of genuine footage: the uint8 (T, 96, 96) array that
``run_stream.py crops VIDEO --out crops.npy`` writes (several such files may be joined).
From them come the inputs each stage sees in use:

- frame encoder: normalised five-frame windows (N, 1, 5, 88, 88), one per frame;
- temporal head: the FP32 encoder's features of consecutive 25-frame clips (M, 25, 512).

:func:`quantize_model` turns an exported FP32 model into Q/DQ ONNX files with ONNX Runtime's
static quantisation. Two flavours from the same data:

- ``target="cpu"``: unsigned 8-bit activations, signed per-channel weights, the layout ONNX
  Runtime's x86 kernels run fastest; the weights 8-bit where the CPU's instruction-set class
  (:func:`cpu_class`) has VNNI, 7-bit elsewhere (:func:`seven_bit_weights`);
- ``target="tensorrt"``: signed, symmetric 8-bit activations and weights (zero point 0) and
  float biases, the Q/DQ form TensorRT accepts; ``build-engine --int8 CROPS`` builds a
  strongly typed engine from it.

Why the CPU class matters: without VNNI (AVX2, and AVX-512 without VNNI) ONNX Runtime's
unsigned x signed kernels add pairs of 8-bit products into 16-bit sums, which saturate
(255 x 127 x 2 > 32767); with VNNI the sums are 32-bit. Weights of 7 bits (ONNX Runtime's
``reduce_range``, at most 64: 255 x 64 x 2 < 32768) keep the same fast kernels exact.
Unsigned weights (unsigned x unsigned kernels, also exact) were as accurate or more, but
their kernels ran the encoder at about FP32's speed here (docs/benchmarks.md, "INT8 on
every x86-64 CPU").
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from engines.frames import five_frame_inputs, window_keys
from engines.method import CLIP_FRAMES, normalise_crops
from errors import MediaError

if TYPE_CHECKING:
    from engines.export import ExportedModel

#: quantisation flavours :func:`quantize_model` writes.
TARGETS = ("cpu", "tensorrt")
#: the CPU class whose ONNX Runtime INT8 kernels sum u8 x s8 products exactly (32-bit).
VNNI = "x86-64-vnni"
#: the CPU class whose u8 x s8 kernels add product pairs in 16 bits, which can saturate.
AVX2 = "x86-64-avx2"
_BATCH = 16


def cpu_class(features: dict[str, bool] | None = None, machine: str | None = None) -> str:
    """The CPU's instruction-set class as ONNX Runtime's INT8 kernels see it: :data:`VNNI`,
    :data:`AVX2`, or the machine's name (``aarch64``, ``x86_64`` before AVX2).

    Read from CPUID (numpy's run-time CPU features, as ONNX Runtime reads it), not from
    ``/proc/cpuinfo``: an emulator such as ``qemu-x86_64 -cpu Haswell`` reports its own CPU
    through CPUID but passes the host's ``/proc/cpuinfo`` through. A CPU with AVX-VNNI but no
    AVX-512 VNNI (numpy does not report the former) counts as :data:`AVX2`: its 7-bit recipe
    is exact everywhere, only a little less accurate. ``features`` and ``machine`` default to
    this machine's.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return machine
    flags = _cpuid_features() if features is None else features
    if flags.get("AVX512VNNI"):
        return VNNI
    return AVX2 if flags.get("AVX2") else "x86_64"


def _cpuid_features() -> dict[str, bool]:
    """numpy's CPUID-based feature table of this CPU (its home moved in numpy 2)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def seven_bit_weights(cpu: str) -> bool:
    """Whether CPU class ``cpu`` needs 7-bit INT8 weights for exact sums: everywhere but
    :data:`VNNI` (whose kernels sum 8-bit ones exactly)."""
    return cpu != VNNI


def input_name(model: Path) -> str:
    """The name of an ONNX model's first input."""
    return onnx.load(str(model), load_external_data=False).graph.input[0].name


def load_crops(paths: list[Path]) -> np.ndarray:
    """Join uint8 (T, 96, 96) crop arrays saved with ``crops --out``.

    Raises:
        MediaError: a missing file, or an array that is not uint8 (T, 96, 96).
    """
    arrays = []
    for path in paths:
        try:  # mapped, as scan reads crops: a header that claims more than the file is refused
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise MediaError(f"cannot read calibration crops {path}: {error}") from None
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (96, 96):
            raise MediaError(
                f"{path} is not a crops file: expected uint8 (T, 96, 96) from "
                f"'run_stream.py crops', got {array.dtype} {array.shape}"
            )
        arrays.append(array)
    if not arrays or sum(len(a) for a in arrays) < CLIP_FRAMES:
        raise MediaError(f"calibration needs at least {CLIP_FRAMES} genuine mouth crops")
    return np.concatenate(arrays)


def calibration_windows(crops: np.ndarray, limit: int = 256) -> np.ndarray:
    """Five-frame encoder inputs (N, 1, 5, 88, 88) from genuine crops, at most ``limit``
    of them spread evenly over the crops; each 25-frame clip's ends get the zero padding the
    encoder sees at window ends."""
    frames = normalise_crops(crops[: len(crops) // CLIP_FRAMES * CLIP_FRAMES])
    starts = range(0, len(frames), CLIP_FRAMES)
    keys = [key for start in starts for key in window_keys(start, CLIP_FRAMES)]
    windows = five_frame_inputs(frames, keys)
    keep = np.linspace(0, len(windows) - 1, min(limit, len(windows))).round().astype(int)
    return windows[np.unique(keep)]


def head_inputs(encoder_onnx: Path, crops: np.ndarray) -> np.ndarray:
    """(M, 25, D) features of the crops' consecutive 25-frame clips, from the FP32 encoder."""
    from engines.backends import ort_session_options

    windows = calibration_windows(crops, limit=len(crops))
    session = ort.InferenceSession(str(encoder_onnx), ort_session_options())
    name = session.get_inputs()[0].name
    features = np.concatenate(
        [
            session.run(None, {name: windows[i : i + _BATCH]})[0]
            for i in range(0, len(windows), _BATCH)
        ]
    )
    return features.reshape(-1, CLIP_FRAMES, features.shape[-1])


class _Batches(CalibrationDataReader):
    """ONNX Runtime's calibration reader: yields ``{input: batch}`` dictionaries."""

    def __init__(self, input_name: str, samples: np.ndarray) -> None:
        self._input = input_name
        self._samples = samples
        self._iterator = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self._samples), _BATCH):
            yield {self._input: self._samples[start : start + _BATCH]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = self._batches()


def quantize_stage(
    source: Path,
    target: Path,
    samples: np.ndarray,
    flavour: str = "cpu",
    cpu: str | None = None,
) -> Path:
    """Static INT8 (Q/DQ, per-channel weights) of one exported stage, calibrated on
    ``samples``; ``flavour="cpu"`` picks the weights' bits for CPU class ``cpu`` (default:
    this CPU's, :func:`cpu_class`)."""
    if flavour not in TARGETS:
        raise ValueError(f"unknown INT8 target {flavour!r}: expected one of {TARGETS}")
    symmetric = flavour == "tensorrt"
    reader = _Batches(input_name(source), samples)
    with prepared_for_quantization(source, target) as prepared:
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=not symmetric and seven_bit_weights(cpu or cpu_class()),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": symmetric,
                "WeightSymmetric": True,
                "QuantizeBias": not symmetric,  # TensorRT takes float biases, not int32 ones
            },
        )
    return target


@contextlib.contextmanager
def prepared_for_quantization(source: Path, target: Path) -> Iterator[Path]:
    """``source`` after shape inference and ONNX Runtime's basic (standard-op) graph
    optimisations, as ONNX Runtime advises before quantising (about a quarter faster INT8
    encoder here): a temporary file beside ``target``, removed afterwards."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared = target.with_name(target.stem + ".prepared.onnx")
    quant_pre_process(str(source), str(prepared))
    try:
        yield prepared
    finally:
        prepared.unlink(missing_ok=True)


def quantize_model(
    exported: ExportedModel,
    crops: np.ndarray,
    out_dir: Path,
    target: str = "cpu",
    cpu: str | None = None,
) -> ExportedModel:
    """INT8 copies of both stages of an :class:`engines.export.ExportedModel`, calibrated on
    genuine ``crops`` (for CPU class ``cpu`` with ``target="cpu"``, default this CPU's);
    returns an ``ExportedModel`` naming the INT8 files."""
    out_dir = Path(out_dir)
    encoder = quantize_stage(
        exported.encoder,
        out_dir / f"frame_encoder.int8-{target}.onnx",
        calibration_windows(crops),
        target,
        cpu,
    )
    head = quantize_stage(
        exported.head,
        out_dir / f"temporal_head.int8-{target}.onnx",
        head_inputs(exported.encoder, crops),
        target,
        cpu,
    )
    return replace(exported, encoder=encoder, head=head)
