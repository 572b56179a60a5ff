"""INT8 for both engines, calibrated on genuine mouth windows.

The calibration data are mouth crops of genuine footage: the uint8 (T, 96, 96) array that
``run_stream.py crops VIDEO --out crops.npy`` writes (several such files may be joined).
From them come the inputs each stage sees in use:

- frame encoder: normalised five-frame windows (N, 1, 5, 88, 88), one per frame;
- temporal head: the FP32 encoder's features of consecutive 25-frame clips (M, 25, 512).

:func:`quantize_model` turns an exported FP32 model into Q/DQ ONNX files with ONNX Runtime's
static quantisation. Two flavours from the same data:

- ``target="cpu"``: unsigned 8-bit activations, signed per-channel weights, the layout ONNX
  Runtime's x86 kernels run fastest;
- ``target="tensorrt"``: signed, symmetric 8-bit activations and weights (zero point 0) and
  float biases, the Q/DQ form TensorRT accepts; ``build-engine --int8 CROPS`` builds a
  strongly typed engine from it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from engines import export
from engines.frames import five_frame_inputs, window_keys
from engines.method import CLIP_FRAMES, normalise_crops
from errors import MediaError

#: quantisation flavours :func:`quantize_model` writes.
TARGETS = ("cpu", "tensorrt")
_BATCH = 16


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
    source: Path, target: Path, input_name: str, samples: np.ndarray, flavour: str = "cpu"
) -> Path:
    """Static INT8 (Q/DQ, per-channel weights) of one exported stage, calibrated on ``samples``."""
    if flavour not in TARGETS:
        raise ValueError(f"unknown INT8 target {flavour!r}: expected one of {TARGETS}")
    symmetric = flavour == "tensorrt"
    reader = _Batches(input_name, samples)
    with prepared_for_quantization(source, target) as prepared:
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
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
    exported: export.ExportedModel, crops: np.ndarray, out_dir: Path, target: str = "cpu"
) -> export.ExportedModel:
    """INT8 copies of both stages of an :class:`engines.export.ExportedModel`, calibrated on
    genuine ``crops``; returns an ``ExportedModel`` naming the INT8 files."""
    out_dir = Path(out_dir)
    encoder = quantize_stage(
        exported.encoder,
        out_dir / f"frame_encoder.int8-{target}.onnx",
        export.ENCODER_INPUT,
        calibration_windows(crops),
        target,
    )
    head = quantize_stage(
        exported.head,
        out_dir / f"temporal_head.int8-{target}.onnx",
        export.HEAD_INPUT,
        head_inputs(exported.encoder, crops),
        target,
    )
    return replace(exported, encoder=encoder, head=head)
