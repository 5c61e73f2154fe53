"""``tdn info``: parameters and multiply-adds of a model (:func:`tdn.info.model_info`)."""
from __future__ import annotations

import argparse
import json

from cli.options import bounded, config_from_args
from tdn.info import model_info
from tdn.model import ARCHS, VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=list(ARCHS), default=None, help="backbone (default: model.arch)")
    parser.add_argument("--segments", type=int, default=None, help="T (default: model.num_segments)")
    parser.add_argument("--variant", choices=list(VARIANTS), default=None, help="default: model.variant")
    parser.add_argument("--size", type=bounded(int, 32, 1024), default=224,
                        help="input height and width, 32..1024 (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, **{"model.arch": args.arch, "model.num_segments": args.segments,
                                    "model.variant": args.variant}).model
    info = model_info(cfg.arch, cfg.num_segments, cfg.variant, args.size, cfg.num_classes)
    if args.json:
        print(json.dumps(info, allow_nan=False))
    else:
        print(f"TDN {cfg.variant} {cfg.arch} T={cfg.num_segments} at {args.size}x{args.size}: "
              f"{info['params'] / 1e6:.2f} M parameters, {info['gmacs']:.2f} GMACs")
    return 0
