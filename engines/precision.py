"""The one vocabulary of numeric precisions, for every backend, flag and setting.

- ``fp32``: the network as exported, in 32-bit floats (the CPU backends' own precision).
- ``fp16``: half-precision floats on an NVIDIA GPU (``torch-cuda``, ``tensorrt``: their own
  precision, about twice as fast there as ``fp32``).
- ``int8``: 8-bit integers calibrated on genuine mouth crops: on the CPU, ONNX Runtime's
  static INT8 encoder and dynamic INT8 head, checked against FP32 (:mod:`engines.int8_cpu`);
  on a GPU, TensorRT engines built from Q/DQ ONNX (``build-engine --int8``,
  :mod:`engines.quantize`).

Which backend runs which is data: :data:`engines.registry.REGISTRY`.
"""

from __future__ import annotations

from errors import LipForensicsError

FP32, FP16, INT8 = "fp32", "fp16", "int8"
#: every precision name; ``--precision``, the ``precision`` setting and the TensorRT builder
#: all take these.
PRECISIONS = (FP32, FP16, INT8)


def check_precision_name(precision: str) -> None:
    """Raise LipForensicsError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise LipForensicsError(
            f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        )
