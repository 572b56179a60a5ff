"""Does ``--precision int8`` hold on this CPU? A small numeric check, for CI to run natively
and as an AVX2-only CPU under an emulator (too slow there for a pytest fixture).

Usage::

    python -m tests.int8_cpu_check prepare DIR      # needs torch and MediaPipe
    python -m tests.int8_cpu_check check DIR [--as-class CLASS]
    qemu-x86_64 -cpu Haswell .venv/bin/python -m tests.int8_cpu_check check DIR \
        --expect-class x86-64-avx2

``prepare`` exports the narrow test network with seeded random weights (seed 11, logits of
a few units, as ``tests/test_backends.py`` uses it) and saves the genuine mouth crops of
``tests/data/talking.mp4``. ``check`` imports neither torch nor MediaPipe: it quantises the
network for this CPU's instruction-set class (or for ``--as-class``, to show what another
class's recipe does here) exactly as ``--precision int8`` does, compares INT8 and FP32
logits on the held-back genuine clips, prints one table and exits 1 past the bound (or
when this CPU is not of the ``--expect-class``: an emulator that did not hide VNNI).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from engines.int8_cpu import MAX_LOGIT_ERROR, build_cpu_int8
from engines.quantize import cpu_class, seven_bit_weights

ROOT = Path(__file__).resolve().parents[1]


ENCODER, HEAD, CROPS = "frame_encoder.onnx", "temporal_head.onnx", "genuine.npy"


def prepare(folder: Path) -> None:
    """Export the seeded narrow network and save the genuine crops into ``folder``."""
    from engines.export import export_model
    from engines.model import LipForensics
    from stream.faces.reader import extract_mouth_crops
    from tests.live_support import NARROW, TALKING
    from tests.test_model import randomise

    exported = export_model(
        randomise(LipForensics(NARROW), seed=11), folder, source_sha256="b" * 64
    )
    if (exported.encoder.name, exported.head.name) != (ENCODER, HEAD):
        raise SystemExit(f"unexpected export file names: {exported.encoder}, {exported.head}")
    np.save(folder / CROPS, extract_mouth_crops(TALKING).crops)


def check(folder: Path, cpu: str) -> bool:
    """Quantise for CPU class ``cpu``, print the table; True when within the bound."""
    with tempfile.TemporaryDirectory() as work:
        result = build_cpu_int8(
            folder / ENCODER, folder / HEAD, Path(work) / "int8", np.load(folder / CROPS), cpu
        )
    holds = result.max_error <= MAX_LOGIT_ERROR
    columns = ("CPU here", "recipe for", "weights", "held-back clips", "max error")
    columns += ("mean error", "bound", "holds")
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    bits = 7 if seven_bit_weights(cpu) else 8
    print(
        f"| {cpu_class()} | {cpu} | {bits}-bit | {result.held_back_clips} | "
        f"{result.max_error:.4f} | {result.mean_error:.4f} | {MAX_LOGIT_ERROR} | "
        f"{'yes' if holds else 'no'} |"
    )
    return holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "check"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--as-class", help="quantise with this CPU class's recipe")
    parser.add_argument("--expect-class", help="exit 1 unless this CPU is of this class")
    args = parser.parse_args()
    if args.expect_class and cpu_class() != args.expect_class:
        sys.exit(f"this CPU is {cpu_class()}, not {args.expect_class}")
    if args.step == "prepare":
        args.folder.mkdir(parents=True, exist_ok=True)
        prepare(args.folder)
    elif not check(args.folder, args.as_class or cpu_class()):
        sys.exit(1)


if __name__ == "__main__":
    main()
