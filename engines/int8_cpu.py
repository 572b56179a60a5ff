"""INT8 for real use on the CPU: the ONNX Runtime INT8 network, calibrated on genuine mouth
crops, cached, and checked against FP32 before it is used.

The frame encoder (the per-frame cost) is quantised *statically*: per-channel INT8 weights
and activation ranges calibrated on genuine crops. The temporal head is quantised
*dynamically*: INT8 weights, and each call's activations quantised over the range they
have in that call. A statically calibrated head clipped the activations of manipulated
clips to the genuine range (on the demo detector its logits on the manipulated demo clip
collapsed from 6..19 to 0); the dynamic one has no fixed range to clip to and moved the
demo detector's logits by at most 0.08 on genuine and manipulated clips alike, at 9-11 ms
of CPU per window against 18-22 in FP32 (``bench/head.py``, docs/benchmarks.md).

The last quarter of the genuine crops (at least one 25-frame clip) is held back, the rest
calibrate (:func:`engines.quantize.quantize_stage`, ``flavour="cpu"``). On the held-back
crops both networks score every window at stride 5; the largest logit difference is the
INT8 error, and a model whose error is past :data:`MAX_LOGIT_ERROR` is refused (its
thresholds, calibrated in FP32, could no longer be trusted). The INT8 files and the check are cached
under ``CACHE/int8-cpu/<key>``, the key made of the FP32 export (weights' hash, model
config, opset), the calibration data's hash and the CPU's instruction-set class
(:func:`engines.quantize.cpu_class`: the INT8 weights and the kernels that sum them depend
on it, so a check passed on a VNNI CPU says nothing about an AVX2 one sharing the cache);
a second start on the same class neither calibrates nor checks again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.backends import OnnxRuntimeBackend, clip_logits
from engines.cache import readable_onnx, warn_rebuilt, written_in_place
from engines.method import CLIP_FRAMES, normalise_crops
from errors import LipForensicsError

if TYPE_CHECKING:
    from engines.export import ExportedModel

#: the largest |INT8 - FP32| clip logit on held-back genuine clips that is accepted. The
#: demo detector's alert threshold sits 2.3 logits above its highest genuine logit
#: (its thresholds file); 0.25 is about a tenth of that, and above the 0.073 its INT8 encoder
#: shows on the held-back genuine demo crops (docs/benchmarks.md).
MAX_LOGIT_ERROR = 0.25
#: share of the calibration crops (their end) held back for the check.
HOLD_BACK_SHARE = 0.25
#: frames between the held-back windows that are compared.
CHECK_STRIDE = 5
#: bump when the quantisation recipe changes, so cached INT8 files are redone.
INT8_FORMAT = 3
_CHECK_FILE = "int8_check.json"
_ENCODER_FILE = "frame_encoder.int8-cpu.onnx"
_HEAD_FILE = "temporal_head.int8-dynamic.onnx"


@dataclass(frozen=True, slots=True)
class Int8Check:
    """How far the INT8 network is from FP32 on held-back genuine clips.

    Attributes:
        max_error, mean_error: largest and mean |INT8 - FP32| clip logit.
        held_back_clips: clips compared (none of them calibrated the network).
        calibration_crops: crops the network was calibrated on.
        cpu_class: the instruction-set class the network was quantised for and checked on.
        build_seconds: time the calibration took (0.0: loaded from the cache).
    """

    max_error: float
    mean_error: float
    held_back_clips: int
    calibration_crops: int
    cpu_class: str
    build_seconds: float = 0.0

    def summary(self) -> str:
        """One line for people: built or cached, and the error against its bound."""
        how = (
            f"built in {self.build_seconds:.0f} s from {self.calibration_crops} genuine crops"
            if self.build_seconds
            else f"cached, calibrated on {self.calibration_crops} genuine crops"
        )
        return (
            f"INT8 (ONNX Runtime, {self.cpu_class}) {how}; logit error against FP32 on "
            f"{self.held_back_clips} "
            f"held-back genuine clips: max {self.max_error:.3g}, mean {self.mean_error:.3g} "
            f"(bound {MAX_LOGIT_ERROR})"
        )


def split_clips(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibration crops, held-back clips (K, 25, 96, 96)): the last
    :data:`HOLD_BACK_SHARE` of the crops (at least 25) cut into windows every
    :data:`CHECK_STRIDE` frames, the rest for calibration.

    Raises:
        LipForensicsError: fewer than two clips' worth of crops.
    """
    if len(crops) < 2 * CLIP_FRAMES:
        raise LipForensicsError(
            f"INT8 calibration needs at least {2 * CLIP_FRAMES} genuine mouth crops "
            f"(two 25-frame clips), got {len(crops)}"
        )
    held = max(CLIP_FRAMES, round(len(crops) * HOLD_BACK_SHARE))
    tail = crops[len(crops) - held :]
    starts = range(0, len(tail) - CLIP_FRAMES + 1, CHECK_STRIDE)
    return crops[: len(crops) - held], np.stack([tail[s : s + CLIP_FRAMES] for s in starts])


def logit_error(reference: object, candidate: object, clips: np.ndarray) -> np.ndarray:
    """|candidate - reference| clip logit of each uint8 clip (K, 25, 96, 96)."""
    normalised = np.stack([normalise_crops(clip) for clip in clips])
    return np.abs(clip_logits(candidate, normalised) - clip_logits(reference, normalised))


def cached_cpu_int8(
    exported: ExportedModel,
    cache_dir: Path,
    *,
    calibration_sha256: str,
    crops: Callable[[], np.ndarray],
    threads: int | None = None,
) -> tuple[OnnxRuntimeBackend, Int8Check]:
    """The ONNX Runtime backend of an FP32 export in INT8 (static encoder, dynamic head),
    and its check against FP32.

    ``crops`` is called only when the cache has no INT8 files for this export and
    ``calibration_sha256`` (the hash of the calibration file: its crops come from it).

    Raises:
        LipForensicsError: too few crops, or an INT8 error past :data:`MAX_LOGIT_ERROR`.
    """
    from engines.quantize import cpu_class

    cpu = cpu_class()
    key = _cache_key(exported, calibration_sha256, cpu)
    folder = Path(cache_dir) / "int8-cpu" / key
    check_file = folder / _CHECK_FILE
    int8_files = (folder / _ENCODER_FILE, folder / _HEAD_FILE)
    if check_file.exists() and all(readable_onnx(path) is not None for path in int8_files):
        check = Int8Check(**{**json.loads(check_file.read_text()), "build_seconds": 0.0})
    else:
        if check_file.exists():  # complete once, corrupted since
            warn_rebuilt(folder)
            shutil.rmtree(folder, ignore_errors=True)
        check = build_cpu_int8(exported.encoder, exported.head, folder, crops(), cpu, threads)
    if check.max_error > MAX_LOGIT_ERROR:
        raise LipForensicsError(
            f"INT8 refused: its logits differ from FP32 by up to {check.max_error:.3g} on "
            f"held-back genuine clips (bound {MAX_LOGIT_ERROR}); use --precision fp32"
        )
    backend = OnnxRuntimeBackend(folder / _ENCODER_FILE, folder / _HEAD_FILE, threads=threads)
    return backend, check


def build_cpu_int8(
    encoder: Path,
    head: Path,
    folder: Path,
    crops: np.ndarray,
    cpu: str,
    threads: int | None = None,
) -> Int8Check:
    """INT8 of the FP32 ``encoder`` and ``head`` files for CPU class ``cpu`` in ``folder``:
    calibrate on the crops, check on the held-back clips, and write the check file last.

    Raises:
        LipForensicsError: fewer than two clips' worth of crops.
    """
    from engines.quantize import calibration_windows, quantize_stage

    started = time.perf_counter()
    calibration, held_back = split_clips(crops)
    with written_in_place(folder) as partial:  # another process's finished build is kept
        int8_encoder = quantize_stage(
            encoder, partial / _ENCODER_FILE, calibration_windows(calibration), cpu=cpu
        )
        int8_head = quantize_head_dynamic(head, partial / _HEAD_FILE, cpu)
        errors = logit_error(
            OnnxRuntimeBackend(encoder, head, threads=threads),
            OnnxRuntimeBackend(int8_encoder, int8_head, threads=threads),
            held_back,
        )
        check = Int8Check(
            max_error=float(errors.max()),
            mean_error=float(errors.mean()),
            held_back_clips=len(held_back),
            calibration_crops=len(calibration),
            cpu_class=cpu,
            build_seconds=time.perf_counter() - started,
        )
        stored = {**asdict(check), "build_seconds": round(check.build_seconds, 1)}
        (partial / _CHECK_FILE).write_text(json.dumps(stored, indent=2) + "\n")
    return check


def quantize_head_dynamic(source: Path, target: Path, cpu: str | None = None) -> Path:
    """Dynamic INT8 of the exported temporal head: per-channel INT8 weights in every
    ``MatMul`` (:mod:`engines.matmul_head`), of the bits CPU class ``cpu`` sums exactly
    (default: this CPU's, :func:`engines.quantize.cpu_class`), activations quantised per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from engines.quantize import cpu_class, prepared_for_quantization, seven_bit_weights

    with prepared_for_quantization(source, target) as prepared:
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            reduce_range=seven_bit_weights(cpu or cpu_class()),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
    return target


def _cache_key(exported: ExportedModel, calibration_sha256: str, cpu: str) -> str:
    """The cache folder of the INT8 copy of this export calibrated on this data for CPU
    class ``cpu``."""
    identity = {
        **exported.metadata,
        "calibration_sha256": calibration_sha256,
        "cpu_class": cpu,
        "int8_format": INT8_FORMAT,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
