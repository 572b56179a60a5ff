"""`ensemble`: several weight files as one network whose logit is their mean logit."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "merge two or more weight files into one network that scores their mean logit"
DESCRIPTION = """\
Writes one weight file holding the given networks side by side (about the size of their
files together). Every command and engine (ONNX Runtime, TensorRT, Triton; INT8 where its
accuracy check passes) loads it as one LipForensics network that scores, for every clip,
the mean of the members' logits (an ensemble), to float rounding: its widths are the sum
of theirs, each member keeps its own channels, and the weights between members are zero.

The members must share the TCN's kernels and levels (the widths may differ). The merged
network computes about as much as its widths say: two networks of one size run like one
network four times their size. Its logits are new numbers, so calibrate it before use:
`calibrate --weights OUT --genuine VIDEOS`."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``ensemble`` command."""
    parser.add_argument("members", type=Path, nargs="+", metavar="WEIGHTS",
                        help="two or more weight files to average")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="merged weight file to write")


def run(args: argparse.Namespace) -> int:
    """Load the members, merge them, check the result loads, write it."""
    import sys

    from commands.writable import check_writable
    from engines.checkpoint import MAX_PARAMETERS, load_checkpoint, save_ensemble
    from engines.ensemble import merged_config
    from engines.model import value_count
    from errors import LipForensicsError

    if len(args.members) < 2:
        raise LipForensicsError("ensemble takes two or more weight files")
    check_writable(args.out, "--out")
    loaded = [load_checkpoint(path) for path in args.members]
    for member in loaded:
        for note in member.notes:
            print(f"note: {member.path.name}: {note}", file=sys.stderr)
    try:
        config = merged_config([m.config for m in loaded])
    except ValueError as error:
        raise LipForensicsError(str(error)) from None
    size = value_count(config)
    if size > MAX_PARAMETERS:
        raise LipForensicsError(
            f"the merged network would hold {size:,} values, more than a weight file may "
            f"({MAX_PARAMETERS:,}): merge fewer or narrower networks"
        )
    save_ensemble(args.out, [m.model for m in loaded])
    print(
        f"{len(loaded)} networks -> {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), loaded "
        f"as one network of widths {config.frontend_channels}/"
        f"{'/'.join(map(str, config.trunk_widths))}, TCN {config.tcn_hidden} per branch "
        f"({size:,} values): it scores their mean logit"
    )
    print("next: run_stream.py calibrate --weights OUT --genuine VIDEOS to choose thresholds")
    return 0
