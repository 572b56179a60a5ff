"""`export-triton`: write a Triton model repository of the network (both stages)."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.options import positive_int

HELP = "write a Triton Inference Server model repository (ONNX, configs, README)"
DESCRIPTION = """\
Export both network stages into a model repository that a stock Triton server serves
(`tritonserver --model-repository OUT`): OUT/lipforensics_encoder and OUT/lipforensics_head,
each with 1/model.onnx and a config.pbtxt (onnxruntime backend, dynamic batching, the
checkpoint's SHA-256 in its parameters, which nodes check), and OUT/README.md. Other
models in OUT are left alone; an OUT that already holds these is refused without --force.
Nodes then use it with `--backend triton --triton-url HOST:PORT` (scan, run, serve).
--gpu: one GPU instance per model with the onnxruntime backend's TensorRT accelerator in
FP16, its engines cached on the server (see OUT/README.md for TensorRT plans instead)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``export-triton`` command."""
    from engines.triton_repository import DEFAULT_ENGINE_CACHE, DEFAULT_MAX_BATCH

    parser.add_argument("--weights", type=Path, required=True, help="LipForensics checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="model repository folder")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the models and README.md an earlier export left in --out",
    )
    parser.add_argument(
        "--gpu", action="store_true", help="GPU instances with TensorRT FP16 (default: CPU)"
    )
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        default=DEFAULT_MAX_BATCH,
        help=f"max_batch_size of both models: rows per request (default {DEFAULT_MAX_BATCH})",
    )
    parser.add_argument(
        "--engine-cache",
        default=DEFAULT_ENGINE_CACHE,
        metavar="DIR",
        help=f"with --gpu: TensorRT engine cache on the server (default {DEFAULT_ENGINE_CACHE})",
    )


def run(args: argparse.Namespace) -> int:
    """Load the weights, export, write the configs and README, list the files."""
    from engines.checkpoint import load_checkpoint
    from engines.digest import file_sha256
    from engines.triton_repository import check_repository_folder, write_repository

    check_repository_folder(args.out, force=args.force)  # before the slow part
    loaded = load_checkpoint(args.weights)
    for note in loaded.notes:
        print(f"note: {note}")
    written = write_repository(
        loaded.model,
        args.out,
        source_sha256=file_sha256(loaded.path),
        max_batch=args.max_batch,
        gpu=args.gpu,
        engine_cache=args.engine_cache,
        force=args.force,
    )
    for path in written:
        print(path)
    print(f"serve it with: tritonserver --model-repository {args.out}")
    return 0
