"""Per-window time with and without the segment cache (default: TDN-R50, T=8, 224 px, bf16).

A stream's consecutive windows share T-1 segment centres. With the cache, each window
preprocesses and runs ``forward_segments`` for one new segment, then ``forward_temporal``
for all T; without it, all T segments every time. Both runs go through
:meth:`pipelines.engine.InferenceEngine.run_windows` (CPU preprocessing of 640x480 frames
included), alternating cached/uncached windows so a shared machine slows both alike;
medians over the runs.

    .venv/bin/python benchmarks/segment_cache.py --windows 20
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.engine import InferenceEngine  # noqa: E402
from pipelines.preprocess import CpuPreprocessor  # noqa: E402
from pipelines.types import Frame, Window  # noqa: E402
from tdn.api import load_model  # noqa: E402
from tdn.bench import emit_record, machine, utc_now  # noqa: E402
from tdn.sampling import SEGMENT_LENGTH  # noqa: E402
from tdn.transforms import PreprocessSpec  # noqa: E402


def stream_windows(count: int, num_segments: int, *, step: int = 6, height: int = 480, width: int = 640):
    """``count`` consecutive windows of one stream (each one segment later than the previous)."""
    rng = np.random.default_rng(0)
    total = (count + num_segments) * step + SEGMENT_LENGTH
    frames = [Frame(image=rng.integers(0, 256, (height, width, 3), dtype=np.uint8), t=i / 25.0, index=i)
              for i in range(total)]
    windows = []
    for w in range(count):
        centres = [SEGMENT_LENGTH // 2 + (w + k) * step for k in range(num_segments)]
        segments = tuple(tuple(frames[c - 2:c + 3]) for c in centres)
        windows.append(Window("bench", tuple(frames[c].t for c in centres), segments, segments[-1][-1].t))
    return windows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--windows", type=int, default=20, help="timed windows per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    model = load_model(arch=args.arch, num_segments=args.segments, num_classes=400, precision=args.precision)
    spec = PreprocessSpec(resize_short=round(args.size * 256 / 224), input_size=args.size,
                          mean=model.meta.mean, std=model.meta.std)
    pre = CpuPreprocessor(spec)
    cached = InferenceEngine(model, pre, cache_segments=True)
    uncached = InferenceEngine(model, pre, cache_segments=False)
    windows = stream_windows(args.warmup + args.windows, args.segments)
    times = {"cached": [], "uncached": []}
    for i, window in enumerate(windows):
        for name, engine in (("cached", cached), ("uncached", uncached)):
            start = time.perf_counter()
            engine.run_windows([window])
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    record = {
        "benchmark": "segment_cache",
        "date": utc_now(),
        "machine": machine(),
        "model": f"TDN-{args.arch} T={args.segments} {args.size}px {args.precision}, batch 1, "
                 "640x480 frames, cpu preprocessing",
        "windows": args.windows,
        "ms_per_window_median": {k: round(v, 1) for k, v in medians.items()},
        "ms_per_window_p90": {k: round(float(np.percentile(v, 90)) * 1000, 1) for k, v in times.items()},
        "speedup": round(medians["uncached"] / medians["cached"], 2),
        "segments_computed": {"cached": cached.stats().segments_computed,
                              "uncached": uncached.stats().segments_computed},
        "load_avg": os.getloadavg(),
    }
    emit_record(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
