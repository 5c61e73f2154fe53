"""``tdn bench model``: TDN against a TSN ResNet per window (:func:`tdn.bench.bench_model`)."""
from __future__ import annotations

import argparse
import json

from cli.options import bounded
from tdn.bench import bench_model
from tdn.config import SETTINGS, Range
from tdn.registry import ARCHS, CPU_PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["model"], help="model: TDN vs TSN (torchvision ResNet) per window")
    parser.add_argument("--arch", choices=ARCHS, default="resnet50")
    parser.add_argument("--segments", type=bounded(int, SETTINGS["model.num_segments"].range), default=8)
    parser.add_argument("--size", type=bounded(int, SETTINGS["model.input_size"].range), default=224)
    parser.add_argument("--runs", type=bounded(int, Range(1, 10_000)), default=20)
    parser.add_argument("--precisions", default=",".join(CPU_PRECISIONS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--threads", type=bounded(int, Range(1, 1024)), default=None,
                        help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    report = bench_model(args.arch, args.segments, args.size, tuple(args.precisions.split(",")), args.runs,
                         threads=args.threads)
    if args.json:
        print(json.dumps(report, allow_nan=False))
        return 0
    print(f"TDN-{args.arch} T={args.segments} vs TSN ({args.arch}, torchvision) at {args.size}px, batch 1, "
          f"{report['threads']} threads, median of {args.runs}:")
    for precision, r in report["results"].items():
        print(f"  {precision}: TDN {r['tdn_ms']:.1f} ms, TSN {r['tsn_ms']:.1f} ms, ratio {r['ratio']:.2f}x")
    return 0
