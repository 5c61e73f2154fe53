"""``tdn stream --source SRC [--source SRC ...]``: the service's events as JSON lines (``--json``).

Each prediction: ``{"event": "prediction", "stream": ID, "time": <capture time of the window's
newest frame, unix s>, "latency_ms": <emit time - that capture time>, "topk": [{"label",
"score"}, ...]}`` (entries below ``--threshold`` left out); each change of the claimed label:
``{"event": "label_change", "stream": ID, "time": s, "from": label|null, "to": label|null,
"score": float}``; each status change: ``{"event": "status", "stream": ID, "status":
"live|reconnecting|ended|failed", "detail": str}``; a window the model scored with non-finite
output: ``{"event": "error", "stream": ID, "time": s, "detail": str}`` (the exit code is then 1);
with ``--stats``, every ``pipeline.stats_interval_s`` per stream, ``{"event": "stats", ...}``.
Schemas: ``docs/events.schema.json``. Runs until every source has ended, ``--duration`` seconds
have passed, or Ctrl-C. ``--write-video PATH`` writes every captured frame annotated with the
stream's latest prediction (one file per ``--source``: ``PATH`` for one, ``PATH`` with ``_1``,
``_2``... otherwise); the paths are checked before anything starts, and each video is written
under a hidden partial name and renamed to ``PATH`` once complete (removed if it fails).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.options import add_setting_flags, bounded, config_from_args
from cli.predict import MODEL_SETTINGS, engine_line
from pipelines.overlay import HEATMAPS
from tdn.config import Range


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", required=True, metavar="SRC",
                        help="camera index, rtsp/http(s) URL or video file (repeatable)")
    parser.add_argument("--duration", type=bounded(float, Range(0, 1e9, lo_open=True)), default=None,
                        help="stop after this many seconds")
    parser.add_argument("--write-video", default=None, metavar="PATH", help="write annotated video (.mp4)")
    parser.add_argument("--heatmap", choices=list(HEATMAPS), default="none",
                        help="heat map in the written video: raw RGB differences or the S-TDM response")
    parser.add_argument("--stats", action="store_true",
                        help="also print each stream's stats every pipeline.stats_interval_s seconds")
    add_setting_flags(parser, "pipeline.threshold", "pipeline.smoothing", "pipeline.file_loop", "pipeline.file_realtime",
                      *MODEL_SETTINGS)
    parser.add_argument("--json", action="store_true", help="print JSON lines")


def _video_paths(path: str, count: int) -> list[Path]:
    base = Path(path)
    if count == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(1, count + 1)]


def main(args: argparse.Namespace) -> int:
    from pipelines.events import StatusEvent
    from pipelines.service import RecognitionService
    from pipelines.sinks import AnnotatedVideoWriter, EventPrinter, check_video_path
    from pipelines.sources import describe_source
    from pipelines.types import SourceError, SourceStatus
    from tdn.export import LIVE_PARTS
    from tdn.video import DEFAULT_FPS

    config = config_from_args(args)
    video_paths = _video_paths(args.write_video, len(args.source)) if args.write_video else []
    for path in video_paths:
        check_video_path(path)
    show = EventPrinter(as_json=args.json)
    errors = 0

    def on_event(event) -> None:
        nonlocal errors
        errors += event.kind == "error"
        show(event)

    failed = 0
    writers: list[AnnotatedVideoWriter] = []
    kinds = {"prediction", "label_change", "status", "error"} | ({"stats"} if args.stats else set())
    with RecognitionService(config) as service:
        print(f"tdn stream: {engine_line(service.model)}", file=sys.stderr, flush=True)
        if service.model.engine != "torch":  # compiled before a file's frames start to play, not on its first windows
            print(f"tdn stream: compiling the {service.model.engine} graphs", file=sys.stderr, flush=True)
            service.compile_ahead(wait=True, parts=LIVE_PARTS)
        service.subscribe(on_event, kinds=kinds)
        started = []
        for i, spec in enumerate(args.source):
            try:
                sid = service.add_source(spec)  # files: paced and looped as pipeline.file_realtime/file_loop say
            except SourceError:
                failed += 1  # the source has already reported its failed status
                continue
            except (ValueError, FileNotFoundError) as exc:
                failed += 1
                show(StatusEvent(describe_source(spec), SourceStatus("failed", str(exc), time.time())))
                continue
            started.append(sid)
            if video_paths:
                fps = getattr(service.source(sid), "fps", 0.0) or DEFAULT_FPS
                writers.append(AnnotatedVideoWriter(service, sid, video_paths[i], heatmap=args.heatmap, fps=fps))
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while started:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                if service.wait_until_ended(timeout=1.0 if remaining is None else min(1.0, remaining)):
                    break
        except KeyboardInterrupt:
            pass
        failed += sum(1 for s in service.status().values() if s.state == "failed")
        for writer in writers:
            print(f"tdn stream: {writer.close()}", file=sys.stderr)
            failed += writer.error is not None
    return 1 if failed or errors else 0
