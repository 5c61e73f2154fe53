"""Live pipeline benchmark: N synthetic 640x480 25 fps streams paced in real time.

Each stream is a looped video file played at its frame rate through the real pipeline
(``FileSource`` capture thread, buffer, scheduler, preprocessing, engine with the segment cache,
post-processing) of one :class:`pipelines.service.RecognitionService`. Reported per run:
latency from the capture of a window's newest frame to its prediction (p50/p95/max),
predictions per second per stream, dropped windows, and the process RSS at the start of
streaming and at the end (sampled every 10 s in between).

    .venv/bin/python benchmarks/pipeline_live.py --seconds 60                 # benchmark (1)
    .venv/bin/python benchmarks/pipeline_live.py --seconds 30 --streams 1 2 3 # benchmark (3)

Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.events import PredictionEvent  # noqa: E402
from pipelines.service import RecognitionService  # noqa: E402
from tdn.bench import emit_record, machine, rss_mb, utc_now  # noqa: E402
from tdn.config import load_config, parse_override  # noqa: E402
from tdn.export import LIVE_PARTS  # noqa: E402
from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip  # noqa: E402
from tdn.video import write_video  # noqa: E402


def make_stream_clip(path: Path, *, width: int, height: int, fps: int, seconds_per_class: float, seed: int) -> Path:
    """Several synthetic motion classes in a row, rendered at the demo model's 160x120 (its
    domain: object sizes and speeds in pixels) and upscaled to ``width`` x ``height``."""
    rng = np.random.default_rng(seed)
    spec = ClipSpec(fps=fps, seconds=seconds_per_class, webcam=False, pace_range=FULL_PACE)
    parts = np.concatenate([render_clip(rng, label, spec) for label in (0, 1, 4, 8)])
    write_video(path, np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in parts]), fps)
    return path


def _p50(values: np.ndarray) -> float | None:
    return round(float(np.percentile(values, 50)), 1) if len(values) else None


def run(service: RecognitionService, clip: Path, streams: int, seconds: float) -> dict:
    latencies: dict[str, list[float]] = {}
    emitted: dict[str, list[float]] = {}
    lock = threading.Lock()

    def on_event(event):
        if isinstance(event, PredictionEvent):
            with lock:
                latencies.setdefault(event.stream, []).append(event.latency_ms)
                emitted.setdefault(event.stream, []).append(event.time + event.latency_ms / 1000.0)

    unsubscribe = service.subscribe(on_event)
    rss = [rss_mb()]
    ids = [service.add_source(str(clip), stream_id=f"stream{i}", realtime=True, loop=True) for i in range(streams)]
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(min(10.0, seconds - (time.monotonic() - start)))
        rss.append(rss_mb())
    elapsed = time.monotonic() - start
    stats = service.stats()
    for sid in ids:
        service.remove_source(sid)
    unsubscribe()
    per_stream = {}
    for sid in ids:
        lat = np.array(latencies.get(sid, []))
        times = emitted.get(sid, [])
        steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        per_stream[sid] = {
            "predictions": int(len(lat)),
            # from the first prediction to the last (the first window needs window_seconds of frames)
            "predictions_per_s": round(steady, 2),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
            "latency_ms_max": round(float(lat.max()), 1) if len(lat) else None,
            # lag growth: the first and the last quarter of the run's predictions
            "latency_ms_p50_first_quarter": _p50(lat[: len(lat) // 4]),
            "latency_ms_p50_last_quarter": _p50(lat[-(len(lat) // 4):]) if len(lat) >= 4 else None,
            "dropped_windows": stats[sid].dropped_windows,
            "capture_fps": round(stats[sid].fps, 2),
            "frames_read": stats[sid].frames_read,
        }
    all_lat = np.concatenate([np.array(v) for v in latencies.values()]) if latencies else np.array([])
    return {
        "streams": streams, "seconds": round(elapsed, 1),
        "latency_ms_p50": round(float(np.percentile(all_lat, 50)), 1) if len(all_lat) else None,
        "latency_ms_p95": round(float(np.percentile(all_lat, 95)), 1) if len(all_lat) else None,
        "min_predictions_per_s": min(s["predictions_per_s"] for s in per_stream.values()),
        "dropped_windows": sum(s["dropped_windows"] for s in per_stream.values()),
        "rss_mb": [round(r, 1) for r in rss],
        "per_stream": per_stream,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1], help="stream counts to run, one run each")
    parser.add_argument("--seconds", type=float, default=60.0, help="streaming time per run")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--weights", default=None, help="default: the bundled demo model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    overrides = dict(parse_override(t) for t in args.overrides)
    if args.weights:
        overrides["model.weights"] = args.weights
    config = load_config(overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_stream_clip(Path(tmp) / "stream.mp4", width=args.width, height=args.height, fps=args.fps,
                                seconds_per_class=5.0, seed=0)
        with RecognitionService(config) as service:
            model = service.model
            record = {
                "benchmark": "pipeline_live",
                "date": utc_now(),
                "machine": machine(),
                "model": f"TDN-{model.cfg.arch} {model.cfg.variant} T={model.cfg.num_segments} "
                         f"{model.meta.input_size}px {model.precision} ({model.meta.source or 'random'}), "
                         f"engine {model.engine} ({model.engine_choice})",
                "stream": f"{args.width}x{args.height} {args.fps} fps synthetic motion clip "
                          "(rendered at 160x120, upscaled) "
                          f"({', '.join(CLASSES[i] for i in (0, 1, 4, 8))}), looped, paced in real time",
                "config": {k: getattr(config.pipeline, k) for k in
                           ("backend", "window_seconds", "max_batch", "max_wait_ms", "cache_segments", "smoothing")},
                "preprocess_backend": service.preprocessor.name,
                "load_avg_before": os.getloadavg(),
                "runs": [],
            }
            if model.engine != "torch":  # as live services do: the graphs ahead, then new batch sizes in the background
                started = time.perf_counter()
                service.compile_ahead(wait=True, parts=LIVE_PARTS)
                record["compile_s"] = round(time.perf_counter() - started, 1)
            for n in args.streams:
                result = run(service, clip, n, args.seconds)
                record["runs"].append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "per_stream"}, allow_nan=False), flush=True)
            record["load_avg_after"] = os.getloadavg()
    emit_record(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
