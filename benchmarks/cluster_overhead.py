"""Cluster overhead: N live RTSP streams through one camera cell (a Ray actor) against the same N
streams in the single-box service, in the same run, alternating.

Both sides run the same :class:`pipelines.service.RecognitionService` code, model and settings,
with the same number of torch threads (``cluster.torch_threads``); the cell adds Ray (an actor
process, event JSON collected from it every ``--poll-s`` s, as the controller does). Streams come
from loopback RTSP servers (``tests/rtsp_server.py``). After ``--warmup-s`` seconds, predictions/s
(all streams together) and latency p50/p95 (capture of a window's newest frame to its prediction,
the events' ``latency_ms``) are taken over ``--seconds`` seconds. Load average and CPU steal are
recorded per phase.

    .venv/bin/python benchmarks/cluster_overhead.py --streams 4 --seconds 60 --repeats 2 \
        --out benchmarks/results/cluster_overhead.json

Not a test: the numbers depend on the machine and what else runs on it.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loopback import RtspServer, free_port  # noqa: E402  (the tests' loopback RTSP server)
from tdn.bench import emit_record, machine, utc_now  # noqa: E402
from tdn.config import load_config, parse_override  # noqa: E402


def cpu_jiffies() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[7], sum(values)


def summarise(latencies: list[float], predictions: int, seconds: float, steal: tuple[int, int]) -> dict:
    return {"predictions_per_s": round(predictions / seconds, 3),
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
            "predictions": predictions, "load_avg_1m": round(os.getloadavg()[0], 2),
            "cpu_steal_pct": round(100 * steal[0] / max(1, steal[1]), 1)}


def measure(collect, cpu, warmup_s: float, seconds: float) -> dict:
    """``collect(start, end)`` -> prediction latencies (ms) of events emitted in that wall-clock span;
    ``cpu()`` -> (CPU s of the serving process, engine busy s: wall time inside the model call) so far."""
    time.sleep(warmup_s)
    start, steal0, cpu0 = time.time(), cpu_jiffies(), cpu()
    time.sleep(seconds)
    steal1, cpu1 = cpu_jiffies(), cpu()
    latencies = collect(start, start + seconds)
    result = summarise(latencies, len(latencies), seconds, (steal1[0] - steal0[0], steal1[1] - steal0[1]))
    process_cpu, engine = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    # the CPU the serving process got per second, and the share of the time its engine was busy (1: saturated)
    return {**result, "cpu_cores_used": round(process_cpu / seconds, 3),
            "engine_busy_fraction": round(engine / seconds, 3),
            "engine_windows_per_busy_s": round(len(latencies) / engine, 2) if engine > 0 else None}


def single_box(config, urls: list[str], warmup_s: float, seconds: float) -> dict:
    import torch

    from pipelines.service import RecognitionService

    torch.set_num_threads(config.cluster.torch_threads)
    emitted: list[tuple[float, float]] = []  # (emit wall time, latency ms)
    lock = threading.Lock()

    def on_prediction(event):
        with lock:
            emitted.append((time.time(), event.latency_ms))

    with RecognitionService(config) as service:
        service.subscribe(on_prediction, kinds={"prediction"})
        for i, url in enumerate(urls):
            service.add_source(url, stream_id=f"cam{i}")

        def collect(start, end):
            with lock:
                return [ms for t, ms in emitted if start <= t <= end]

        return measure(collect, lambda: (time.process_time(), service.engine.stats().busy_s), warmup_s, seconds)


def one_cell(config, urls: list[str], warmup_s: float, seconds: float, poll_s: float) -> dict:
    import ray

    from pipelines.cluster.cell import cell_actor

    cell = cell_actor(config).remote(config, "bench")
    ray.get(cell.health.remote())  # loaded and calibrated
    for i, url in enumerate(urls):
        ray.get(cell.add_camera.remote(f"cam{i}", url))
    received: list[tuple[float, float]] = []  # (arrival wall time, latency ms)
    stop = threading.Event()

    def poll():
        seq = 0
        while not stop.wait(poll_s):
            events, seq, _ = ray.get(cell.events_since.remote(seq))
            now = time.time()
            received.extend((now, e["latency_ms"]) for e in events if e["event"] == "prediction")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        def cpu():
            health = ray.get(cell.health.remote())
            return health["cpu_s"], health["busy_s"]

        return measure(lambda start, end: [ms for t, ms in list(received) if start <= t <= end], cpu, warmup_s,
                       seconds)
    finally:
        stop.set()
        poller.join()
        ray.get(cell.close.remote())
        ray.kill(cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=2, help="single-box and cell phases, alternating")
    parser.add_argument("--poll-s", type=float, default=0.25, help="how often events are collected from the cell")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = load_config(None, dict(parse_override(o) for o in args.overrides))
    servers = [RtspServer(free_port(), width=320, height=240).start() for _ in range(args.streams)]
    from ray_cluster import local_ray_cluster

    phases = []
    started = utc_now()
    try:
        with local_ray_cluster(nodes=1, num_cpus=2, namespace="tdn-bench"):
            for repeat in range(args.repeats):
                for kind in ("single_box", "cell"):
                    urls = [s.url for s in servers]
                    if kind == "single_box":
                        result = single_box(config, urls, args.warmup_s, args.seconds)
                    else:
                        result = one_cell(config, urls, args.warmup_s, args.seconds, args.poll_s)
                    phases.append({"repeat": repeat, "kind": kind, **result})
                    print(phases[-1], file=sys.stderr, flush=True)
    finally:
        for server in servers:
            server.stop()

    def median(kind: str, key: str):
        values = [p[key] for p in phases if p["kind"] == kind and p[key] is not None]
        return float(np.median(values)) if values else None

    summary = {kind: {key: median(kind, key) for key in ("predictions_per_s", "latency_ms_p50", "latency_ms_p95")}
               for kind in ("single_box", "cell")}
    ratio = {key: (round(summary["cell"][key] / summary["single_box"][key], 3)
                   if summary["cell"][key] and summary["single_box"][key] else None)
             for key in ("predictions_per_s", "latency_ms_p95")}
    emit_record({"benchmark": "cluster_overhead", "date": started, "finished": utc_now(), "machine": machine(),
                 "streams": args.streams, "stream": "loopback RTSP 320x240 25 fps H.264", "seconds": args.seconds,
                 "warmup_s": args.warmup_s, "torch_threads": config.cluster.torch_threads,
                 "model": config.model.weights or "bundled demo model", "precision": config.model.precision,
                 "phases": phases, "median": summary, "cell_over_single_box": ratio}, args.out)


if __name__ == "__main__":
    main()
