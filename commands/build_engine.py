"""`build-engine`: compile the network into TensorRT engines for this machine's GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build TensorRT engines (FP16, or INT8 from genuine crops) for this GPU and cache them"
DESCRIPTION = """\
Export both network stages to ONNX and compile each into a TensorRT engine for the GPU of this
machine, with one optimisation profile for batches from 1 to --max-batch (tuned for
--opt-batch) and a timing cache. Engines are cached under OUT keyed by GPU name, compute
capability, TensorRT version, ONNX hash, profile and precision: running it again, or starting
`--backend tensorrt` with the same cache folder, loads them instead of rebuilding.

FP16 is the default (TensorRT 10: FP16 builder flag; TensorRT 11: strongly typed network from an
FP16 ONNX). --int8 CROPS.npy (genuine mouth crops from `crops`) builds Q/DQ INT8 engines instead.
Needs the GPU extra: pip install .[gpu] (TensorRT and pycuda)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``build-engine`` command."""
    parser.add_argument("--weights", type=Path, required=True, help="LipForensics checkpoint")
    parser.add_argument(
        "--out",
        type=Path,
        help="cache folder (default: $LIPFORENSICS_CACHE or ~/.cache/lipforensics-live, "
        "where --backend tensorrt looks)",
    )
    parser.add_argument(
        "--int8",
        type=Path,
        nargs="+",
        metavar="CROPS",
        help="genuine mouth crops (.npy from `crops`) to calibrate INT8 engines on",
    )
    parser.add_argument("--max-batch", type=int, default=256, help="largest batch (default 256)")
    parser.add_argument("--opt-batch", type=int, default=32, help="batch to tune for (default 32)")


def run(args: argparse.Namespace) -> int:
    """Check TensorRT, export, (calibrate,) build or load both engines, print where they are."""
    import time

    from engines import export
    from engines.backends import TensorRTBackend
    from engines.checkpoint import load_checkpoint
    from engines.digest import file_sha256
    from engines.precision import FP16, INT8
    from engines.tensorrt import import_tensorrt

    trt, _ = import_tensorrt()  # the clear reason first, before any slow step
    started = time.perf_counter()
    loaded = load_checkpoint(args.weights)
    for note in loaded.notes:
        print(f"note: {note}")
    cache = args.out or export.default_cache_dir()
    exported = export.cached_export(loaded.model, cache, source_sha256=file_sha256(args.weights))
    precision = FP16
    if args.int8:
        from engines.quantize import load_crops, quantize_model

        crops = load_crops(args.int8)
        exported = quantize_model(exported, crops, exported.encoder.parent, target="tensorrt")
        precision = INT8
        print(f"INT8 calibrated on {len(crops)} genuine crops")
    backend = TensorRTBackend(
        exported.encoder,
        exported.head,
        cache_dir=cache,
        precision=precision,
        max_batch=args.max_batch,
        opt_batch=args.opt_batch,
    )
    print(
        f"{precision} engines for {backend.device_name} (TensorRT {trt.__version__}) ready in "
        f"{Path(cache) / 'tensorrt'} after {time.perf_counter() - started:.1f} s"
    )
    return 0
