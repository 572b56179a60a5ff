"""`finetune`: train the temporal head on cached features of real and fake videos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "fine-tune the MS-TCN head on cached features (encoder frozen, the paper's recipe)"
DESCRIPTION = """\
The paper's recipe: the frame encoder of --weights stays frozen; the MS-TCN and the linear
head are trained on 25-frame clips of real (label 0) and fake (label 1) videos. --real and
--fake are folders of feature files written by `features` with the same --weights.

Videos, never clips, are split between training and validation (--val-share of each
class); the classes weigh equally in the loss; the validation AUC is printed after each
epoch and the best epoch's weights are kept; training stops after --patience epochs
without improvement. Deterministic for a given --seed.

--weights may be the authors' checkpoint, a lipreading checkpoint (its 500-word head is
replaced by a new 1-logit head) or one of ours. --out is written in the authors' layout
({"model": state_dict}, plus the widths when narrower), so every command takes it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``finetune`` command."""
    from training.finetune_config import FinetuneConfig

    defaults = FinetuneConfig()
    parser.add_argument("--weights", type=Path, required=True, help="starting checkpoint")
    parser.add_argument("--real", type=Path, required=True, help="folder of real videos' features")
    parser.add_argument("--fake", type=Path, required=True, help="folder of fake videos' features")
    parser.add_argument("--out", type=Path, required=True, help="fine-tuned checkpoint to write")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 0)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early stopping")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="learning rate")
    parser.add_argument(
        "--clip-stride",
        type=int,
        default=defaults.clip_stride,
        help="frames between training clip starts, a multiple of 5 (default 5)",
    )
    parser.add_argument(
        "--val-share",
        type=float,
        default=defaults.val_share,
        help="share of each class's videos held out for validation (default 0.2)",
    )


def run(args: argparse.Namespace) -> int:
    """Load the features, train, save the best head with the frozen encoder."""
    from engines.checkpoint import load_checkpoint, save_checkpoint
    from engines.digest import file_sha256
    from errors import LipForensicsError
    from training.finetune import FinetuneConfig, labelled_folder, split_by_video, train_head

    if args.epochs < 1 or args.patience < 1 or args.batch_size < 2 or args.clip_stride < 1:
        raise LipForensicsError(
            "--epochs, --patience, --clip-stride must be >= 1, --batch-size >= 2"
        )
    if not 0.0 < args.val_share < 1.0:
        raise LipForensicsError(f"--val-share must be between 0 and 1, got {args.val_share}")
    loaded = load_checkpoint(args.weights)
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    weights = file_sha256(args.weights)
    feature_dim = loaded.config.feature_dim
    videos = [
        video
        for folder, label in ((args.real, 0), (args.fake, 1))
        for video in labelled_folder(folder, label, weights, feature_dim, args.clip_stride)
    ]
    config = FinetuneConfig(
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        clip_stride=args.clip_stride,
        val_share=args.val_share,
        seed=args.seed,
    )
    try:
        train, val = split_by_video(videos, config.val_share, config.seed)
    except ValueError as error:
        raise LipForensicsError(str(error)) from None
    print(f"{len(train)} videos to train on, {len(val)} to validate on (split by video)")
    try:
        result = train_head(loaded.model.head, train, val, config, log=print)
    except ValueError as error:
        raise LipForensicsError(str(error)) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, loaded.model)
    print(f"kept epoch {result.best_epoch} (validation AUC {result.best_auc:.4f}) -> {args.out}")
    print("next: run_stream.py calibrate --weights OUT --genuine VIDEOS to choose thresholds")
    return 0
