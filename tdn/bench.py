"""``tdn bench model``: TDN against a TSN ResNet on the same frames, per engine, same process, medians.

TSN here is torchvision's ResNet (same depth) run on the T centre frames as a batch of T
images, prepared exactly like TDN's fast path: eval, BatchNorm folded, channels_last,
inference mode, and the same precision; under an ONNX engine both run from a float32 ONNX
export in the engine's precision. All start from the same float32 clip and convert their own
input inside the timed call. Runs alternate between the models so that a noisy, shared
machine slows them alike; the ratios are the figures to read.

Also the record helpers the scripts in ``benchmarks/`` share: :func:`machine`, :func:`rss_mb`, :func:`utc_now`,
:func:`emit_record`.
"""
from __future__ import annotations

import io
import json
import os
import platform
import statistics
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision
import yaml

from tdn.api import load_model
from tdn.engines import CHOICE_TABLE, RUNNERS, SUPPORTED, device_kind
from tdn.files import write_atomically
from tdn.export import ONNX_OPSET, onnx_bytes
from tdn.inference import DTYPES, fold_batchnorm
from tdn.info import count_macs
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
        write_atomically(out, lambda partial: partial.write_text(text + "\n"))


def _torchvision_tsn(arch: str) -> torch.nn.Module:
    """torchvision's ResNet, eval, its BatchNorms folded as TDN's are (:func:`tdn.inference.fold_batchnorm`)."""
    return fold_batchnorm(getattr(torchvision.models, arch)(weights=None).eval())


def _time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


PEAK_MATMUL_SIZE = 2048  # square matrices of the matrix-multiply peak


def _matmul(precision: str, size: int = PEAK_MATMUL_SIZE):
    """A call multiplying two random square ``size`` matrices in ``precision`` (``2 * size**3`` FLOP): timed
    beside the models, its throughput is the ceiling a convolution network can approach on this CPU."""
    a, b = (torch.randn(size, size, dtype=DTYPES[precision]) for _ in range(2))
    return lambda: a @ b


def _by_round(values: list[float]) -> dict:
    """Median and quartiles of per-round figures (one value: all three equal)."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {"median": round(statistics.median(values), 3), "q1": round(q1, 3), "q3": round(q3, 3)}


def _onnx_of(module: torch.nn.Module, example: torch.Tensor) -> bytes:
    """A plain float32 ONNX export of ``module`` (torchvision's ResNet for TSN under an engine)."""
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET, input_names=["input"],
                          output_names=["logits"])
    return buffer.getvalue()


def bench_model(arch: str = "resnet50", num_segments: int = 8, size: int = 224, precisions=CPU_PRECISIONS,
                runs: int = 20, warmup: int = 3, threads: int | None = None, engines=("torch",),
                peak: bool = False) -> dict:
    """Median ms per batch-1 window of TDN and TSN under each engine and precision it runs on the CPU.

    ``results[precision]`` has torch's ``tdn_ms``, ``tsn_ms`` and ``ratio``, and per engine
    ``engines[name]``: ``tdn_ms``, ``tsn_ms``, ``ratio`` (TDN / TSN, same engine), ``vs_tsn_torch``
    (TDN under it / TSN under torch) and ``tflops`` (TDN's multiply-adds x 2 / time). All the
    models of one precision are timed in turn within each round, so machine noise hits them alike;
    on a machine whose speed changes between rounds, the medians of two models can fall in different
    speeds, so ``vs_tsn_torch_by_round`` also gives the median and quartiles of the ratio taken
    round by round. With ``peak``, each round also times a square matrix multiply
    (:data:`PEAK_MATMUL_SIZE`): ``results[precision]["matmul_peak_tflops"]`` is its median, and each
    engine's ``peak_share_by_round`` TDN's TFLOP/s over that round's multiply.
    """
    if threads:
        torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    clip = torch.randn(1, num_segments, 5, 3, size, size)
    centres = clip[0, :, 2]  # (1, T, 5, 3, H, W) -> (T, 3, H, W), a view: each model converts its input itself
    tdn_fp32 = load_model(arch=arch, num_segments=num_segments, num_classes=1000, precision="fp32")
    tdn_fp32.meta.input_size = size
    engine_graphs = [e for e in engines if e != "torch"]
    tdn_graph = onnx_bytes(tdn_fp32, "model") if engine_graphs else b""
    tsn_graph = _onnx_of(_torchvision_tsn(arch), centres) if engine_graphs else b""
    window, frames = clip.numpy(), centres.contiguous().numpy()
    gflop = 2 * count_macs(tdn_fp32, clip) / 1e9
    results = {}
    for precision in precisions:
        models = {}  # (engine, "tdn" | "tsn") -> a call on the clip
        for engine in engines:
            if precision not in SUPPORTED[engine].get("cpu", ()):
                continue
            if engine == "torch":
                tdn = load_model(arch=arch, num_segments=num_segments, num_classes=1000, precision=precision)
                tsn = _torchvision_tsn(arch).to(dtype=DTYPES[precision], memory_format=torch.channels_last)
                models[engine, "tdn"] = lambda tdn=tdn: tdn(clip)
                models[engine, "tsn"] = lambda tsn=tsn, p=precision: tsn(
                    centres.to(DTYPES[p], memory_format=torch.channels_last)).float().mean(0)
            else:
                tdn_run = RUNNERS[engine](tdn_graph, cpu, precision)
                tsn_run = RUNNERS[engine](tsn_graph, cpu, precision)
                models[engine, "tdn"] = lambda run=tdn_run: torch.from_numpy(run({"window": window})[0])
                models[engine, "tsn"] = lambda run=tsn_run: torch.from_numpy(run({"input": frames})[0]).mean(0)
        if peak:
            models["matmul", "peak"] = _matmul(precision)
        times = {key: [] for key in models}  # key -> seconds, one per round
        order = list(models)
        with torch.inference_mode():
            for i in range(warmup + runs):
                for key in order if i % 2 == 0 else order[::-1]:
                    t = _time_once(models[key])
                    if i >= warmup:
                        times[key].append(t)
        ms = {key: statistics.median(v) * 1e3 for key, v in times.items()}
        per_engine = {}
        for engine in dict.fromkeys(e for e, _ in models if e != "matmul"):
            tdn_ms, tsn_ms = ms[engine, "tdn"], ms[engine, "tsn"]
            per_engine[engine] = {"tdn_ms": round(tdn_ms, 1), "tsn_ms": round(tsn_ms, 1),
                                  "ratio": round(tdn_ms / tsn_ms, 3), "tflops": round(gflop / tdn_ms, 4)}
            if ("torch", "tsn") in ms:
                per_engine[engine]["vs_tsn_torch"] = round(tdn_ms / ms["torch", "tsn"], 3)
                per_engine[engine]["vs_tsn_torch_by_round"] = _by_round(
                    [a / b for a, b in zip(times[engine, "tdn"], times["torch", "tsn"])])
            if peak:  # TDN's FLOP/s over the multiply's, round by round: (gflop / tdn) / (matmul_flop / matmul)
                per_engine[engine]["peak_share_by_round"] = _by_round(
                    [gflop * 1e9 * m / (2 * PEAK_MATMUL_SIZE**3 * t) for t, m in zip(times[engine, "tdn"],
                                                                                times["matmul", "peak"])])
        results[precision] = {"engines": per_engine, **{k: per_engine["torch"][k] for k in ("tdn_ms", "tsn_ms", "ratio")
                                                        if "torch" in per_engine}}
        if peak:
            results[precision]["matmul_peak_tflops"] = round(2 * PEAK_MATMUL_SIZE**3 / ms["matmul", "peak"] / 1e9, 3)
    return {
        "arch": arch, "num_segments": num_segments, "size": size, "batch": 1, "runs": runs,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_name(),
        "device_kind": device_kind(cpu), "gflop_per_window": round(gflop, 2),
        "date": utc_now(), "load_average": list(os.getloadavg()), "results": results,
    }


def record_choice(report: dict, path: Path = CHOICE_TABLE) -> None:
    """Write the engines of ``report`` (:func:`bench_model`), fastest TDN first, as the row of its device
    kind in the choice table ``engine="auto"`` reads."""
    table = yaml.safe_load(path.read_text()) or {}
    row = table.setdefault(report["device_kind"], {})
    source = (f"tdn bench model, TDN-{report['arch']} T={report['num_segments']} {report['size']}px batch 1, "
              f"{report['threads']} threads, {report['date']}")
    for precision, result in report["results"].items():
        ranked = sorted(result["engines"].items(), key=lambda item: item[1]["tdn_ms"])
        row[precision] = {"ms": {engine: r["tdn_ms"] for engine, r in ranked}, "source": source}
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    text = header + yaml.safe_dump(table, sort_keys=False)  # keeps each row fastest first
    write_atomically(path, lambda partial: partial.write_text(text))  # engine "auto" reads it at every load
