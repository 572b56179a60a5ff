"""The network's precision on the CPU: FP32 as exported, or INT8 calibrated on genuine
mouth crops (:mod:`engines.int8_cpu`).

The calibration data is a ``.npy`` of uint8 (T, 96, 96) crops (``crops --out``) or a genuine
video; the caller hands in how to read its crops, which happens only when the cache has no
INT8 network for it yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.backends import Backend, resolve_backend_name
from engines.digest import file_sha256
from engines.int8_cpu import Int8Check, cached_cpu_int8
from errors import LipForensicsError, MediaError

#: names accepted by ``--precision`` and the ``precision`` setting.
PRECISIONS = ("fp32", "int8")


def check_precision(precision: str, backend: str) -> None:
    """Raise LipForensicsError unless ``precision`` is known and runs on ``backend``."""
    if precision not in PRECISIONS:
        raise LipForensicsError(
            f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        )
    if precision == "int8" and resolve_backend_name(backend) != "onnxruntime":
        raise LipForensicsError(
            f"--precision int8 runs on ONNX Runtime (the CPU), not on {backend!r}; "
            "pass --backend onnxruntime (TensorRT INT8 engines: build-engine --int8)"
        )


def int8_backend(
    model: object,
    *,
    source_sha256: str,
    calibration: Path,
    crops: Callable[[], np.ndarray],
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> tuple[Backend, Int8Check]:
    """The INT8 ONNX Runtime backend of ``model`` calibrated on ``calibration``, cached by
    the weights' and the calibration file's hashes, and its check against FP32; ``crops``
    reads the calibration file's uint8 (T, 96, 96) crops when the cache misses.

    Raises:
        LipForensicsError: a missing calibration file, too few crops in it, or an INT8
            network too far from FP32 (:data:`engines.int8_cpu.MAX_LOGIT_ERROR`).
    """
    from engines import export

    calibration = Path(calibration)
    if not calibration.is_file():
        raise MediaError(
            f"INT8 calibration file not found: {calibration} "
            "(expected genuine crops .npy from `crops`, or a genuine video)"
        )
    cache = Path(cache_dir) if cache_dir else export.default_cache_dir()
    exported = export.cached_export(model, cache, source_sha256=source_sha256)
    return cached_cpu_int8(
        exported,
        cache,
        calibration_sha256=file_sha256(calibration),
        crops=crops,
        threads=threads,
    )
