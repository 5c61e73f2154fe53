"""``tdn train``: train a model from TDN-format lists (:func:`tdn.train.train`)."""
from __future__ import annotations

import argparse
import os

import torch.distributed as dist

from cli.options import add_setting_flags, config_from_args
from tdn.train import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("shortcuts for common settings (each is also a --set key)")
    add_setting_flags(g, "train.train_list", "train.val_list", "train.root", "train.output", "train.epochs",
                      "train.batch_size", "train.lr", "train.seed", "train.resume", "model.labels", "model.arch",
                      "model.variant", "model.num_segments", "model.input_size", "model.resize_short")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    result = train(cfg, progress=not args.no_progress)
    if dist.is_initialized():
        dist.destroy_process_group()
    if result.best is not None and int(os.environ.get("RANK", "0")) == 0:
        print(f"best validation top-1 {result.best.top1:.4f} -> {result.output / 'best.pt'}")
    return 0
