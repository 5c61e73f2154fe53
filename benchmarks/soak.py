"""Soak benchmark: N live RTSP streams for a long time while one camera keeps going down.

Every stream comes from its own real RTSP server on 127.0.0.1 (``tests/rtsp_server.py``,
GStreamer, H.264, paced in real time) through the whole pipeline of one
:class:`pipelines.service.RecognitionService`. The server of stream ``cam0`` is killed every
``--outage-every-s`` seconds and started again ``--outage-s`` seconds later. Sampled every
``--sample-s`` seconds: process RSS, predictions and latency (capture of a window's newest
frame to its prediction) per stream, the streams' states, the load average and the CPU time the
hypervisor gave to other machines (steal, from /proc/stat: on a shared host it can halve the CPU).
Reported:

- RSS drift after warm-up: median of the last five samples against the first five;
- latency p50/p95 per block of ``--block-s`` seconds (flat or not);
- every outage: whether and how fast ``cam0`` predicted again on frames captured after the restart;
- starvation: the lowest predictions/s any stream got in any sample interval after warm-up
  (``cam0``'s intervals that overlap an outage or its recovery excluded).

    .venv/bin/python benchmarks/soak.py --streams 4 --minutes 60 --out benchmarks/results/soak.json

Not a test: the numbers depend on the machine and what else runs on it (load and steal are recorded).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loopback import RtspServer, free_port  # noqa: E402  (the tests' loopback RTSP server)
from pipelines.events import PredictionEvent, StatusEvent  # noqa: E402
from pipelines.service import RecognitionService  # noqa: E402
from tdn.bench import emit_record, machine, rss_mb, utc_now  # noqa: E402
from tdn.config import load_config, parse_override  # noqa: E402

FLAKY = "cam0"


@dataclass
class Interval:
    """What the event listener collected since the last sample (cleared at each sample: bounded)."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    capture_times: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Outage:
    down_at: float  # wall clock
    up_at: float | None = None
    recovered_at: float | None = None  # emission time of the first prediction on frames captured after up_at

    def to_json(self) -> dict:
        recovery = None if self.up_at is None or self.recovered_at is None else round(self.recovered_at - self.up_at, 2)
        return {"down_s": None if self.up_at is None else round(self.up_at - self.down_at, 1),
                "recovered": self.recovered_at is not None, "recovery_s": recovery}


class Recorder:
    """The service's event listener: per-interval predictions, outage recoveries, status changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.interval = Interval()
        self.outages: list[Outage] = []
        self.states: list[tuple[float, str, str, str]] = []

    def __call__(self, event) -> None:
        with self.lock:
            if isinstance(event, PredictionEvent):
                self.interval.latencies.setdefault(event.stream, []).append(event.latency_ms)
                self.interval.capture_times.setdefault(event.stream, []).append(event.time)
                outage = self.outages[-1] if self.outages else None
                if (event.stream == FLAKY and outage is not None and outage.up_at is not None
                        and outage.recovered_at is None and event.time > outage.up_at):
                    outage.recovered_at = event.time + event.latency_ms / 1000.0
            elif isinstance(event, StatusEvent):
                self.states.append((time.time(), event.stream, event.status.state, event.status.detail))

    def take(self) -> Interval:
        with self.lock:
            interval, self.interval = self.interval, Interval()
            return interval


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat: steal is time a hypervisor gave to others."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[7], sum(values)


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarise(samples: list[dict], outages: list[Outage], *, warmup_s: float, block_s: float,
              outage_margin_s: float) -> dict:
    """The figures the soak is judged by; see the module docstring."""
    steady = [s for s in samples if s["t"] >= warmup_s]
    rss = [s["rss_mb"] for s in steady]
    first, last = (float(np.median(rss[:5])), float(np.median(rss[-5:]))) if len(rss) >= 10 else (None, None)
    blocks = []
    for start in np.arange(warmup_s, samples[-1]["t"] if samples else 0, block_s):
        in_block = [s for s in steady if start <= s["t"] < start + block_s]
        lat = [x for s in in_block for x in s["latencies"]]
        blocks.append({"from_s": int(start), "latency_ms_p50": _percentile(lat, 50),
                       "latency_ms_p95": _percentile(lat, 95), "rss_mb": in_block[-1]["rss_mb"] if in_block else None})

    def near_outage(sample: dict) -> bool:
        lo, hi = sample["wall"] - sample["interval_s"], sample["wall"]
        return any(o.down_at - outage_margin_s <= hi and lo <= (o.recovered_at or o.down_at + 1e9) + outage_margin_s
                   for o in outages)

    lowest = {}
    for s in steady:
        for stream, rate in s["predictions_per_s"].items():
            if stream == FLAKY and near_outage(s):
                continue
            lowest[stream] = min(lowest.get(stream, rate), rate)
    recoveries = [o.to_json() for o in outages]
    return {
        "rss_mb_after_warmup_first": None if first is None else round(first, 1),
        "rss_mb_last": None if last is None else round(last, 1),
        "rss_drift_pct": None if first is None else round(100 * (last - first) / first, 2),
        "latency_blocks": blocks,
        "outages": len(outages),
        "outages_recovered": sum(r["recovered"] for r in recoveries),
        "recovery_s": [r["recovery_s"] for r in recoveries],
        "lowest_predictions_per_s": {k: round(v, 2) for k, v in sorted(lowest.items())},
    }


def soak(service: RecognitionService, servers: list[RtspServer], args: argparse.Namespace) -> dict:
    recorder = Recorder()
    unsubscribe = service.subscribe(recorder)
    ids = [service.add_source(server.url, stream_id=f"cam{i}") for i, server in enumerate(servers)]
    start = time.monotonic()
    samples: list[dict] = []
    next_sample, next_outage, restart_at = args.sample_s, args.outage_every_s, None
    last_sample_wall, last_cpu = time.time(), cpu_times()
    try:
        while (elapsed := time.monotonic() - start) < 60 * args.minutes:
            if restart_at is None and elapsed >= next_outage:
                servers[0].stop()
                with recorder.lock:
                    recorder.outages.append(Outage(down_at=time.time()))
                restart_at, next_outage = elapsed + args.outage_s, next_outage + args.outage_every_s
            elif restart_at is not None and elapsed >= restart_at:
                servers[0].start()
                with recorder.lock:
                    recorder.outages[-1].up_at = time.time()
                restart_at = None
            if elapsed >= next_sample:
                interval, wall, cpu = recorder.take(), time.time(), cpu_times()
                span = wall - last_sample_wall
                steal_pct = 100 * (cpu[0] - last_cpu[0]) / max(1, cpu[1] - last_cpu[1])
                states = {sid: st.state for sid, st in service.status().items()}
                samples.append({
                    "t": round(elapsed, 1), "wall": wall, "interval_s": span, "rss_mb": round(rss_mb(), 1),
                    "load_avg_1m": os.getloadavg()[0], "cpu_steal_pct": round(steal_pct, 1), "states": states,
                    "predictions_per_s": {sid: len(interval.latencies.get(sid, [])) / span for sid in ids},
                    "latencies": [x for values in interval.latencies.values() for x in values],
                })
                last_sample_wall, last_cpu, next_sample = wall, cpu, next_sample + args.sample_s
                print(json.dumps({"t": samples[-1]["t"], "rss_mb": samples[-1]["rss_mb"], "states": states,
                                  "predictions_per_s": {k: round(v, 2) for k, v in
                                                        samples[-1]["predictions_per_s"].items()},
                                  "latency_ms_p95": _percentile(samples[-1]["latencies"], 95)}, allow_nan=False),
                      flush=True)
            time.sleep(0.2)  # the loop's tick: outages and samples are scheduled on elapsed time
        stats = service.stats()
    finally:
        unsubscribe()
        for sid in ids:
            service.remove_source(sid)
    summary = summarise(samples, recorder.outages, warmup_s=args.warmup_s, block_s=args.block_s,
                        outage_margin_s=2 * service.config.pipeline.window_seconds)
    summary["dropped_windows"] = {sid: stats[sid].dropped_windows for sid in ids}
    return {"summary": summary, "status_changes": [(round(t, 1), s, st, d) for t, s, st, d in recorder.states],
            "samples": [{k: v for k, v in s.items() if k not in ("latencies", "wall")} for s in samples]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--outage-every-s", type=float, default=180.0, help="cam0's server is killed this often")
    parser.add_argument("--outage-s", type=float, default=15.0, help="... for this long")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=120.0)
    parser.add_argument("--block-s", type=float, default=600.0, help="latency percentiles per block of this length")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--weights", default=None, help="default: the bundled demo model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--out", default=None, help="also write the record as JSON here")
    args = parser.parse_args(argv)

    overrides = dict(parse_override(t) for t in args.overrides)
    if args.weights:
        overrides["model.weights"] = args.weights
    config = load_config(overrides=overrides)
    servers = [RtspServer(free_port(), path=f"/cam{i}", width=args.width, height=args.height, fps=args.fps).start()
               for i in range(args.streams)]
    try:
        with RecognitionService(config) as service:
            model = service.model
            record = {
                "benchmark": "soak", "date": utc_now(), "machine": machine(),
                "model": f"TDN-{model.cfg.arch} {model.cfg.variant} T={model.cfg.num_segments} "
                         f"{model.meta.input_size}px {model.precision} ({model.meta.source or 'random'})",
                "streams": f"{args.streams} x loopback RTSP {args.width}x{args.height} {args.fps} fps H.264 "
                           f"(videotestsrc); cam0 down {args.outage_s:g} s every {args.outage_every_s:g} s",
                "minutes": args.minutes, "warmup_s": args.warmup_s,
                "config": {k: getattr(config.pipeline, k) for k in
                           ("backend", "window_seconds", "max_batch", "buffer_seconds", "reconnect_max_s")},
                "load_avg_before": os.getloadavg(),
            }
            record.update(soak(service, servers, args))
            record["load_avg_after"] = os.getloadavg()
    finally:
        for server in servers:
            server.stop()
    emit_record(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
