"""`crops`: save a video's mouth crops as a .npy array and a PNG contact sheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "save the 96x96 mouth crops of a video (.npy) and a PNG contact sheet to look at"
DESCRIPTION = """\
Save the mouth crops the network sees: uint8 array (T, 96, 96), one crop per 25 fps frame
with a face (frames without a face are left out), plus a contact sheet of them.
The .npy can be passed to `scan` in place of the video."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``crops`` command."""
    parser.add_argument("video", type=Path, help="video file (any frame rate)")
    parser.add_argument("--out", type=Path, required=True, help="where to save the .npy crops")
    parser.add_argument(
        "--sheet", type=Path, help="contact sheet PNG (default: --out with suffix .png)"
    )
    parser.add_argument(
        "--smoothing",
        default="lookahead",
        help="landmark smoothing: lookahead (reference, default), causal, ahead:N, none",
    )


def run(args: argparse.Namespace) -> int:
    """Extract, save, report one line per file written."""
    import numpy as np
    from PIL import Image

    from commands.progress import ProgressBar
    from errors import LipForensicsError, MediaError
    from stream.faces.reader import extract_mouth_crops
    from stream.faces.sheet import contact_sheet
    from stream.faces.smoothing import Smoothing

    try:
        Smoothing.named(args.smoothing)
    except ValueError as error:
        raise LipForensicsError(str(error)) from None
    if args.out.suffix.lower() != ".npy":
        raise LipForensicsError(
            f"--out must end in .npy (scan reads crops from .npy files): {args.out}"
        )
    sheet_path = args.sheet or args.out.with_suffix(".png")
    for target in (args.out, sheet_path):
        if not target.parent.is_dir():
            raise LipForensicsError(f"output folder does not exist: {target.parent}")

    with ProgressBar("crops") as bar:
        result = extract_mouth_crops(args.video, smoothing=args.smoothing, progress=bar)
    if result.problem:
        print(f"warning: {result.problem}", file=sys.stderr)
    if not len(result.crops):
        raise MediaError(f"no face found in {args.video} ({result.frames} frames at 25 fps)")
    try:
        with open(args.out, "wb") as file:  # exactly this path (np.save would add .npy)
            np.save(file, result.crops)
        Image.fromarray(contact_sheet(result.crops)).save(sheet_path, format="PNG")
    except OSError as error:
        raise LipForensicsError(f"cannot write output: {error}") from None
    missing = result.frames - len(result.crops)
    print(
        f"{len(result.crops)} crops of {result.frames} frames at 25 fps "
        f"({missing} without a face, {len(result.runs)} run(s)) -> {args.out}"
    )
    print(f"contact sheet -> {sheet_path}")
    return 0
