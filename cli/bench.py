"""``tdn bench model``: TDN against a TSN ResNet per window, per engine (:func:`tdn.bench.bench_model`)."""
from __future__ import annotations

import argparse
import json

from cli.options import bounded
from tdn.bench import bench_model, record_choice
from tdn.config import SETTINGS, Range
from tdn.registry import ARCHS, CPU_PRECISIONS, ENGINES


def _engine_list(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    bad = [n for n in names if n not in ENGINES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown engine {bad[0]!r}; expected a comma-separated list of "
                                         f"{', '.join(ENGINES)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["model"], help="model: TDN vs TSN (torchvision ResNet) per window")
    parser.add_argument("--arch", choices=ARCHS, default="resnet50")
    parser.add_argument("--segments", type=bounded(int, SETTINGS["model.num_segments"].range), default=8)
    parser.add_argument("--size", type=bounded(int, SETTINGS["model.input_size"].range), default=224)
    parser.add_argument("--runs", type=bounded(int, Range(1, 10_000)), default=20)
    parser.add_argument("--precisions", default=",".join(CPU_PRECISIONS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--engines", type=_engine_list, default=("torch",),
                        help="comma-separated engines timed in the same process (default: torch)")
    parser.add_argument("--threads", type=bounded(int, Range(1, 1024)), default=None,
                        help="torch threads (default: torch's choice)")
    parser.add_argument("--peak", action="store_true",
                        help="also time a matrix multiply in every round: the precision's peak, and TDN's share of it")
    parser.add_argument("--record-choice", action="store_true",
                        help="write the measured engine order for this device kind to tdn/engine_choice.yaml "
                             "(what model.engine=auto reads)")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    precisions = tuple(args.precisions.split(","))
    report = bench_model(args.arch, args.segments, args.size, precisions, args.runs, threads=args.threads,
                         engines=args.engines, peak=args.peak)
    if args.record_choice:
        record_choice(report)
    if args.json:
        print(json.dumps(report, allow_nan=False))
        return 0
    print(f"TDN-{args.arch} T={args.segments} vs TSN ({args.arch}, torchvision) at {args.size}px, batch 1, "
          f"{report['threads']} threads, median of {args.runs} ({report['gflop_per_window']} GFLOP per TDN window):")
    for precision, r in report["results"].items():
        if "matmul_peak_tflops" in r:
            print(f"  {precision} matrix-multiply peak: {r['matmul_peak_tflops']:.3f} TFLOP/s")
        for engine, e in r["engines"].items():
            vs = ""
            if "vs_tsn_torch" in e:
                q = e["vs_tsn_torch_by_round"]
                vs = (f", {e['vs_tsn_torch']:.2f}x TSN-torch (round by round {q['median']:.2f}x, "
                      f"quartiles {q['q1']:.2f}-{q['q3']:.2f})")
            share = ""
            if "peak_share_by_round" in e:
                q = e["peak_share_by_round"]
                share = (f", {100 * e['tflops'] / r['matmul_peak_tflops']:.0f}% of the matmul peak (round by round "
                         f"{100 * q['median']:.0f}%, quartiles {100 * q['q1']:.0f}-{100 * q['q3']:.0f}%)")
            print(f"  {precision} {engine}: TDN {e['tdn_ms']:.1f} ms, TSN {e['tsn_ms']:.1f} ms, ratio {e['ratio']:.2f}x"
                  f"{vs}; {e['tflops']:.2f} TFLOP/s{share}")
    return 0
