"""``tdn predict CLIP [CLIP ...]``: clip-level predictions for video files.

One line per clip; with ``--json``: ``{"source": path, "summary": "moving right 0-4 s, then moving
left 4-8 s", "segments": [{"label", "start_s", "end_s", "score"}, ...], "topk": [{"label",
"score"}, ...]}``. ``segments`` say what happens over time: the sliding windows' claimed labels
(smoothing and threshold as live, :mod:`pipelines.segments`), ``label`` null where nothing reached
the threshold (uncertain); ``topk`` is the whole-clip TDN test protocol (:mod:`tdn.sampling`,
``--views 1x1`` or ``10x3``). ``--windows`` adds ``"windows": [{"time": s, "topk": [...]}, ...]``; a
clip only partly decodable adds ``"warning": "..."`` (also printed to stderr); a clip that cannot
be read gives ``{"source": path, "error": "..."}`` - the other clips still run and the exit code
is 1. Scored by :mod:`pipelines.clip`.
"""
from __future__ import annotations

import argparse
import json
import sys

from cli.options import add_setting_flags, config_from_args
from tdn.registry import VIEWS

# the settings ``tdn predict`` and ``tdn stream`` both take as flags
MODEL_SETTINGS = ("model.weights", "model.labels", "model.num_segments", "model.device", "model.precision", "model.engine",
                  "pipeline.backend", "pipeline.topk")
# and those that make the segments
SEGMENT_SETTINGS = ("pipeline.smoothing", "pipeline.threshold")  # window length: --set pipeline.window_seconds=S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="video files")
    parser.add_argument("--views", choices=VIEWS, default="1x1",
                        help="temporal clips x spatial crops (default: %(default)s; 10x3 is the dense protocol)")
    parser.add_argument("--windows", action="store_true",
                        help="also print every sliding window's scores (the segments are made from them)")
    add_setting_flags(parser, *MODEL_SETTINGS, *SEGMENT_SETTINGS)
    parser.add_argument("--json", action="store_true", help="print JSON lines")


def engine_line(model) -> str:
    """Which engine runs the model, in which precision, and why (stderr of ``tdn predict`` and ``tdn stream``)."""
    return f"engine {model.engine}, {model.precision} ({model.engine_choice})"


def _format_text(record: dict) -> str:
    if "error" in record:
        return f"{record['source']}: error: {record['error']}"
    labels = ", ".join(f"{e['label']} {e['score']:.3f}" for e in record["topk"])
    text = (f"{record['source']}: {record['summary']}\n  whole-clip protocol: {labels}"
            + (f" (warning: {record['warning']})" if "warning" in record else ""))
    for w in record.get("windows", []):
        text += f"\n  {w['time']:7.2f} s  " + ", ".join(f"{e['label']} {e['score']:.3f}" for e in w["topk"])
    return text


def main(args: argparse.Namespace) -> int:
    from pipelines.postprocess import probabilities
    from pipelines.segments import clip_segments, headline
    from pipelines.service import RecognitionService
    from tdn.video import ClipError

    config = config_from_args(args)
    failed = 0
    with RecognitionService(config) as service:
        print(f"tdn predict: {engine_line(service.model)}", file=sys.stderr, flush=True)
        for path in args.clips:
            try:
                result = service.predict_clip(path, views=args.views, per_window=True)
                p = config.pipeline
                segments = clip_segments(result, service.labels, window_seconds=p.window_seconds,
                                         threshold=p.threshold, smoothing=p.smoothing)
                record = {"source": path, "summary": headline(segments), "segments": [s.to_json() for s in segments],
                          "topk": service.topk(result.scores)}
                if args.windows:
                    record["windows"] = [{"time": round(w.time, 3),
                                          "topk": service.topk(probabilities(w.logits))}
                                         for w in result.windows]
                if result.warning:
                    record["warning"] = result.warning
                    print(f"tdn predict: warning: {path}: {result.warning}", file=sys.stderr, flush=True)
            except (ClipError, FileNotFoundError, ValueError, RuntimeError) as exc:
                failed += 1
                record = {"source": path, "error": str(exc)}
            print(json.dumps(record, allow_nan=False) if args.json else _format_text(record), flush=True)
    if failed:
        print(f"tdn predict: {failed} of {len(args.clips)} clips failed", file=sys.stderr)
    return 1 if failed else 0
