"""INT8 for real use on the CPU: the ONNX Runtime INT8 network, calibrated on genuine mouth
crops, cached, and checked against FP32 before it is used.

The genuine crops are split by 25-frame clip: every :data:`HOLD_BACK_EVERY`-th clip is held
back, the rest calibrate (:func:`calibration.int8.quantize_model`, ``target="cpu"``). On the
held-back clips both networks score every clip; the largest logit difference is the INT8
error, and a model whose error is past :data:`MAX_LOGIT_ERROR` is refused (its thresholds,
calibrated in FP32, could no longer be trusted). The INT8 files and the check are cached
under ``CACHE/int8-cpu/<key>``, the key made of the FP32 export (weights' hash, model
config, opset) and the calibration data's hash, so a second start neither calibrates nor
checks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engines.backends import OnnxRuntimeBackend, clip_logits
from engines.errors import LipForensicsError
from engines.export import ExportedModel
from engines.method import CLIP_FRAMES, normalise_crops

#: the largest |INT8 - FP32| clip logit on held-back genuine clips that is accepted. The
#: demo detector's alert thresholds sit 2.6 logits apart and 2.3 above its highest genuine
#: logit (docs/demo_detector.md); 0.25 is a tenth of that, and well above what INT8 gives
#: a sound model (0.01-0.1: docs/benchmarks.md).
MAX_LOGIT_ERROR = 0.25
#: every this-many-th 25-frame clip of the calibration crops is held back for the check.
HOLD_BACK_EVERY = 5
#: bump when the quantisation recipe changes, so cached INT8 files are redone.
INT8_FORMAT = 1
_CHECK_FILE = "int8_check.json"


@dataclass(frozen=True, slots=True)
class Int8Check:
    """How far the INT8 network is from FP32 on held-back genuine clips.

    Attributes:
        max_error, mean_error: largest and mean |INT8 - FP32| clip logit.
        held_back_clips: clips compared (none of them calibrated the network).
        calibration_crops: crops the network was calibrated on.
        build_seconds: time the calibration took (0.0: loaded from the cache).
    """

    max_error: float
    mean_error: float
    held_back_clips: int
    calibration_crops: int
    build_seconds: float = 0.0

    def summary(self) -> str:
        """One line for people: built or cached, and the error against its bound."""
        how = (
            f"built in {self.build_seconds:.0f} s from {self.calibration_crops} genuine crops"
            if self.build_seconds
            else f"cached, calibrated on {self.calibration_crops} genuine crops"
        )
        return (
            f"INT8 (ONNX Runtime) {how}; logit error against FP32 on {self.held_back_clips} "
            f"held-back genuine clips: max {self.max_error:.3g}, mean {self.mean_error:.3g} "
            f"(bound {MAX_LOGIT_ERROR})"
        )


def split_clips(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibration crops, held-back clips (K, 25, 96, 96)): every
    :data:`HOLD_BACK_EVERY`-th whole 25-frame clip held back, at least one.

    Raises:
        LipForensicsError: fewer than two clips' worth of crops.
    """
    count = len(crops) // CLIP_FRAMES
    if count < 2:
        raise LipForensicsError(
            f"INT8 calibration needs at least {2 * CLIP_FRAMES} genuine mouth crops "
            f"(two 25-frame clips), got {len(crops)}"
        )
    clips = crops[: count * CLIP_FRAMES].reshape(count, CLIP_FRAMES, *crops.shape[1:])
    held = np.zeros(count, dtype=bool)
    held[HOLD_BACK_EVERY - 1 :: HOLD_BACK_EVERY] = True
    held[-1] |= not held.any()
    return clips[~held].reshape(-1, *crops.shape[1:]), clips[held]


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
    """The INT8 ONNX Runtime backend of an FP32 export, and its check against FP32.

    ``crops`` is called only when the cache has no INT8 files for this export and
    ``calibration_sha256`` (the hash of the calibration file: its crops come from it).

    Raises:
        LipForensicsError: too few crops, or an INT8 error past :data:`MAX_LOGIT_ERROR`.
    """
    key = _cache_key(exported, calibration_sha256)
    folder = Path(cache_dir) / "int8-cpu" / key
    check_file = folder / _CHECK_FILE
    if check_file.exists():  # written last: the INT8 files are complete
        check = Int8Check(**{**json.loads(check_file.read_text()), "build_seconds": 0.0})
        encoder, head = _int8_files(folder)
    else:
        check, (encoder, head) = _build(exported, folder, crops(), threads)
    if check.max_error > MAX_LOGIT_ERROR:
        raise LipForensicsError(
            f"INT8 refused: its logits differ from FP32 by up to {check.max_error:.3g} on "
            f"held-back genuine clips (bound {MAX_LOGIT_ERROR}); use --precision fp32"
        )
    return OnnxRuntimeBackend(encoder, head, threads=threads), check


def _build(
    exported: ExportedModel, folder: Path, crops: np.ndarray, threads: int | None
) -> tuple[Int8Check, tuple[Path, Path]]:
    """Calibrate, check on the held-back clips, and write the check file last."""
    from calibration.int8 import quantize_model

    started = time.perf_counter()
    calibration, held_back = split_clips(crops)
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    int8 = quantize_model(exported, calibration, partial, target="cpu")
    errors = logit_error(
        OnnxRuntimeBackend(exported.encoder, exported.head, threads=threads),
        OnnxRuntimeBackend(int8.encoder, int8.head, threads=threads),
        held_back,
    )
    check = Int8Check(
        max_error=float(errors.max()),
        mean_error=float(errors.mean()),
        held_back_clips=len(held_back),
        calibration_crops=len(calibration),
        build_seconds=time.perf_counter() - started,
    )
    stored = {**asdict(check), "build_seconds": round(check.build_seconds, 1)}
    (partial / _CHECK_FILE).write_text(json.dumps(stored, indent=2) + "\n")
    if folder.exists():  # another process finished the same build first: keep its files
        for leftover in partial.iterdir():
            leftover.unlink()
        partial.rmdir()
    else:
        partial.replace(folder)
    return check, _int8_files(folder)


def _int8_files(folder: Path) -> tuple[Path, Path]:
    """The INT8 encoder and head in a cache folder (names from quantize_model)."""
    return folder / "frame_encoder.int8-cpu.onnx", folder / "temporal_head.int8-cpu.onnx"


def _cache_key(exported: ExportedModel, calibration_sha256: str) -> str:
    """The cache folder of the INT8 copy of this export calibrated on this data."""
    identity = {
        **exported.metadata,
        "calibration_sha256": calibration_sha256,
        "int8_format": INT8_FORMAT,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
