"""``tdn synth``: the synthetic motion dataset (:func:`tdn.synth.generate`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.options import bounded
from tdn.config import Range
from tdn.synth import CLASSES, ClipSpec, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/synth", help="output folder (default: %(default)s)")
    count = bounded(int, Range(0, 100_000))
    parser.add_argument("--train", type=count, default=200, help="training clips per class (default: %(default)s)")
    parser.add_argument("--val", type=count, default=30, help="validation clips per class (default: %(default)s)")
    parser.add_argument("--test", type=count, default=40, help="held-out test clips per class (default: %(default)s)")
    parser.add_argument("--seed", type=bounded(int, Range(0, 2**32 - 1)), default=0)
    parser.add_argument("--width", type=bounded(int, Range(16, 4096)), default=ClipSpec.width)
    parser.add_argument("--height", type=bounded(int, Range(16, 4096)), default=ClipSpec.height)
    parser.add_argument("--seconds", type=bounded(float, Range(0, 600, lo_open=True)), default=ClipSpec.seconds)
    parser.add_argument("--fps", type=bounded(int, Range(1, 240)), default=None,
                        help="capture rate of every clip (default: each clip draws one from %d-%d fps)"
                        % ClipSpec.fps_range)
    parser.add_argument("--workers", type=bounded(int, Range(1, 256)), default=1,
                        help="processes rendering clips (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    spec = ClipSpec(width=args.width, height=args.height, fps=args.fps, seconds=args.seconds)
    fewest = round((spec.fps or spec.fps_range[0]) * spec.seconds)
    if min(spec.width, spec.height) < 32 or spec.width % 2 or spec.height % 2 or fewest < 5:
        raise ValueError(f"clips must be at least 32x32 pixels (even sides, for H.264) and 5 frames, got "
                         f"{spec.width}x{spec.height}, {fewest} frames")
    counts = {"train": args.train, "val": args.val, "test": args.test}
    lists = generate(args.out, {k: v for k, v in counts.items() if v > 0}, seed=args.seed, spec=spec,
                     workers=args.workers)
    for split, path in lists.items():
        print(f"{split}: {counts[split] * len(CLASSES)} clips -> {path}")
    print(f"labels -> {Path(args.out) / 'labels.txt'}")
    return 0
