"""``tdn train``: train a model from TDN-format lists (:func:`tdn.train.train`)."""
from __future__ import annotations

import argparse
import os

import torch.distributed as dist

from cli.options import config_from_args
from tdn.train import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("shortcuts for common settings (each is also a --set key)")
    g.add_argument("--train-list", help="train.train_list")
    g.add_argument("--val-list", help="train.val_list")
    g.add_argument("--root", help="train.root (default: each list's folder)")
    g.add_argument("--output", help="train.output")
    g.add_argument("--epochs", type=int, help="train.epochs")
    g.add_argument("--batch-size", type=int, help="train.batch_size")
    g.add_argument("--lr", type=float, help="train.lr")
    g.add_argument("--seed", type=int, help="train.seed")
    g.add_argument("--resume", help="train.resume (a last.pt)")
    g.add_argument("--labels", help="model.labels (default: labels.txt beside the training list)")
    g.add_argument("--arch", help="model.arch")
    g.add_argument("--variant", help="model.variant")
    g.add_argument("--segments", type=int, help="model.num_segments")
    g.add_argument("--input-size", type=int, help="model.input_size")
    g.add_argument("--resize-short", type=int, help="model.resize_short")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, **{
        "train.train_list": args.train_list, "train.val_list": args.val_list, "train.root": args.root,
        "train.output": args.output, "train.epochs": args.epochs, "train.batch_size": args.batch_size,
        "train.lr": args.lr, "train.seed": args.seed, "train.resume": args.resume, "model.labels": args.labels,
        "model.arch": args.arch,
        "model.variant": args.variant, "model.num_segments": args.segments,
        "model.input_size": args.input_size, "model.resize_short": args.resize_short})
    result = train(cfg, progress=not args.no_progress)
    if dist.is_initialized():
        dist.destroy_process_group()
    if result.best is not None and int(os.environ.get("RANK", "0")) == 0:
        print(f"best validation top-1 {result.best.top1:.4f} -> {result.output / 'best.pt'}")
    return 0
