"""``tdn info``: parameters and multiply-adds of a model, counted by running it."""
from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from tdn.cli import bounded
from tdn.model import ARCHS, VARIANTS, TDN, TDNConfig


def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of one forward pass, counted by PyTorch's FLOP counter (conv, linear, matmul).

    The counter reports FLOPs as 2 per multiply-add; the paper's "FLOPs" are multiply-adds.
    """
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return counter.get_total_flops() // 2


def model_info(arch: str, num_segments: int, variant: str = "tdn", size: int = 224, num_classes: int = 400) -> dict:
    """``{"params": int, "gmacs": float}`` for batch 1 at ``size`` x ``size``.

    Built on the meta device: shapes and counts without allocating or computing anything.
    """
    with torch.device("meta"):
        model = TDN(TDNConfig(arch=arch, num_segments=num_segments, num_classes=num_classes, variant=variant)).eval()
        example = torch.zeros(1, num_segments, model.cfg.segment_length, 3, size, size)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "gmacs": round(count_macs(model, example) / 1e9, 3)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=list(ARCHS), default=None, help="backbone (default: model.arch)")
    parser.add_argument("--segments", type=int, default=None, help="T (default: model.num_segments)")
    parser.add_argument("--variant", choices=list(VARIANTS), default=None, help="default: model.variant")
    parser.add_argument("--size", type=bounded(int, 32, 1024), default=224,
                        help="input height and width, 32..1024 (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    from tdn.cli import config_from_args

    cfg = config_from_args(args, **{"model.arch": args.arch, "model.num_segments": args.segments,
                                    "model.variant": args.variant}).model
    info = model_info(cfg.arch, cfg.num_segments, cfg.variant, args.size, cfg.num_classes)
    if args.json:
        print(json.dumps(info, allow_nan=False))
    else:
        print(f"TDN {cfg.variant} {cfg.arch} T={cfg.num_segments} at {args.size}x{args.size}: "
              f"{info['params'] / 1e6:.2f} M parameters, {info['gmacs']:.2f} GMACs")
    return 0
