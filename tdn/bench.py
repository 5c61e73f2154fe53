"""``tdn bench model``: TDN against a TSN ResNet on the same frames, same process, medians.

TSN here is torchvision's ResNet (same depth) run on the T centre frames as a batch of T
images, prepared exactly like TDN's fast path: eval, BatchNorm folded, channels_last,
inference mode, and the same precision. Both start from the same float32 clip and convert
their own input (precision, channels_last) inside the timed call. Runs alternate between
the two models so that a noisy, shared machine slows both alike; the ratio is the figure
to read.

Also the record helpers the scripts in ``benchmarks/`` share: :func:`machine`, :func:`rss_mb`, :func:`utc_now`,
:func:`emit_record`.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision

from tdn.api import load_model
from tdn.inference import DTYPES, fold_batchnorm
from tdn.registry import CPU_PRECISIONS


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """Where a benchmark runs: CPU, cores, torch version and threads."""
    return f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def rss_mb() -> float:
    """This process's resident memory (MiB), from /proc/self/status; NaN where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def emit_record(record: dict, out: str | None = None) -> None:
    """Print a benchmark record as JSON and, given ``out``, also write it to that file."""
    text = json.dumps(record, indent=1, allow_nan=False)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def _torchvision_tsn(arch: str) -> torch.nn.Module:
    """torchvision's ResNet, eval, its BatchNorms folded as TDN's are (:func:`tdn.inference.fold_batchnorm`)."""
    return fold_batchnorm(getattr(torchvision.models, arch)(weights=None).eval())


def _time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_model(arch: str = "resnet50", num_segments: int = 8, size: int = 224, precisions=CPU_PRECISIONS,
                runs: int = 20, warmup: int = 3, threads: int | None = None) -> dict:
    """Median seconds per batch-1 window for TDN and TSN in each precision, and their ratio."""
    if threads:
        torch.set_num_threads(threads)
    clip = torch.randn(1, num_segments, 5, 3, size, size)
    centres = clip[0, :, 2]  # (1, T, 5, 3, H, W) -> (T, 3, H, W), a view: each model converts its input itself
    results = {}
    for precision in precisions:
        tdn = load_model(arch=arch, num_segments=num_segments, num_classes=1000, precision=precision)
        tsn = _torchvision_tsn(arch).to(dtype=DTYPES[precision], memory_format=torch.channels_last)

        def run_tdn():
            tdn(clip)

        def run_tsn():
            tsn(centres.to(DTYPES[precision], memory_format=torch.channels_last)).float().mean(0)

        times = {"tdn": [], "tsn": []}
        with torch.inference_mode():
            for i in range(warmup + runs):
                for name, fn in (("tdn", run_tdn), ("tsn", run_tsn)) if i % 2 == 0 else (("tsn", run_tsn), ("tdn", run_tdn)):
                    t = _time_once(fn)
                    if i >= warmup:
                        times[name].append(t)
        tdn_ms, tsn_ms = (statistics.median(times[k]) * 1e3 for k in ("tdn", "tsn"))
        results[precision] = {"tdn_ms": round(tdn_ms, 1), "tsn_ms": round(tsn_ms, 1), "ratio": round(tdn_ms / tsn_ms, 3)}
    return {
        "arch": arch, "num_segments": num_segments, "size": size, "batch": 1, "runs": runs,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_name(),
        "date": utc_now(), "results": results,
    }

