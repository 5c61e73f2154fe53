"""``tdn info``: parameters and multiply-adds of a model (:func:`tdn.info.model_info`)."""
from __future__ import annotations

import argparse
import json

from cli.options import add_setting_flags, bounded, config_from_args
from tdn.config import SETTINGS
from tdn.info import model_info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "model.arch", "model.num_segments", "model.variant")
    size = SETTINGS["model.input_size"].range
    parser.add_argument("--size", type=bounded(int, size), default=224,
                        help=f"input height and width, {size.describe('size')} (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args).model
    info = model_info(cfg.arch, cfg.num_segments, cfg.variant, args.size, cfg.num_classes)
    if args.json:
        print(json.dumps(info, allow_nan=False))
    else:
        print(f"TDN {cfg.variant} {cfg.arch} T={cfg.num_segments} at {args.size}x{args.size}: "
              f"{info['params'] / 1e6:.2f} M parameters, {info['gmacs']:.2f} GMACs")
    return 0
