"""``tdn export``: a model to TorchScript, checked against the eager model (:mod:`tdn.export`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import add_setting_flags, config_from_args
from tdn.export import export_torchscript, load_torchscript, max_logit_difference
from tdn.registry import CPU_PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "model.weights")
    parser.add_argument("--out", help="output .ts file (default: the weights file with suffix .ts)")
    parser.add_argument("--precision", choices=CPU_PRECISIONS, default="fp32",
                        help="precision baked into the traced model (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from tdn.api import DEMO_WEIGHTS, load_model

    cfg = config_from_args(args)
    weights = Path(cfg.model.weights or DEMO_WEIGHTS)
    model = load_model(weights, num_segments=cfg.model.num_segments, device="cpu", precision=args.precision)
    out = Path(args.out) if args.out else weights.with_suffix(".ts")
    export_torchscript(model, out)
    exported, _ = load_torchscript(out)
    diff = max_logit_difference(model, exported)
    print(f"exported {weights} -> {out} ({args.precision}); max |logit difference| vs eager: {diff:.3g}")
    return 0
