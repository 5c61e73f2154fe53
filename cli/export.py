"""``tdn export``: a model to TorchScript or ONNX, checked against the eager model (:mod:`tdn.export`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import add_setting_flags, config_from_args
from tdn.export import ONNX_PARTS
from tdn.registry import CPU_PRECISIONS

SUFFIXES = {"torchscript": ".ts", "onnx": ".onnx"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "model.weights")
    parser.add_argument("--format", choices=list(SUFFIXES), default="torchscript",
                        help="torchscript (fixed precision) or onnx (float32; engines set the precision) "
                             "(default: %(default)s)")
    parser.add_argument("--part", choices=list(ONNX_PARTS), default="model",
                        help="onnx: the whole model, or one half as the streaming engine runs it: segments "
                             "(per-segment features) or temporal (default: %(default)s)")
    parser.add_argument("--out", help="output file (default: the weights file with suffix .ts or .onnx)")
    parser.add_argument("--precision", choices=CPU_PRECISIONS, default="fp32",
                        help="torchscript: precision baked into the traced model (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from tdn.api import DEMO_WEIGHTS, load_model
    from tdn.export import (export_onnx, export_torchscript, load_torchscript, max_logit_difference,
                            onnx_max_difference)

    cfg = config_from_args(args)
    if args.format == "onnx" and args.precision != "fp32":
        raise ValueError("an ONNX export is float32 (the engine that runs it sets the precision); drop --precision")
    if args.format == "torchscript" and args.part != "model":
        raise ValueError("--part is for --format onnx; TorchScript exports the whole model")
    weights = Path(cfg.model.weights or DEMO_WEIGHTS)
    model = load_model(weights, num_segments=cfg.model.num_segments, device="cpu", precision=args.precision)
    suffix = SUFFIXES[args.format] if args.part == "model" else f".{args.part}{SUFFIXES[args.format]}"
    out = Path(args.out) if args.out else weights.with_suffix(suffix)
    if args.format == "onnx":
        export_onnx(model, out, args.part)
        diff = onnx_max_difference(model, out)
        checked = "ONNX Runtime"
    else:
        export_torchscript(model, out)
        diff = max_logit_difference(model, load_torchscript(out)[0])
        checked = "TorchScript"
    print(f"exported {weights} -> {out} ({args.format} {args.part}, {args.precision}); "
          f"max |{'logit' if args.part == 'model' else 'output'} difference| {checked} vs eager: {diff:.3g}")
    return 0
