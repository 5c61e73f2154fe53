"""``tdn stream --source SRC [--source SRC ...]``: live predictions as JSON lines (``--json``).

Each prediction: ``{"event": "prediction", "stream": ID, "time": <capture time of the window's
newest frame, unix s>, "latency_ms": <emit time - that capture time>, "topk": [{"label",
"score"}, ...]}`` (entries below ``--threshold`` left out); each status change:
``{"event": "status", "stream": ID, "status": "live|reconnecting|ended|failed", "detail": str}``.
Runs until every source has ended, ``--duration`` seconds have passed, or Ctrl-C.
``--write-video PATH`` writes every captured frame annotated with the stream's latest
prediction (one file per source: ``PATH`` for one, ``PATH`` with ``_1``, ``_2``... otherwise).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import cv2

from pipelines.cli_predict import add_model_arguments, model_overrides
from pipelines.overlay import HEATMAPS, annotate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", required=True, metavar="SRC",
                        help="camera index, rtsp/http(s) URL or video file (repeatable)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--write-video", default=None, metavar="PATH", help="write annotated video (.mp4)")
    parser.add_argument("--heatmap", choices=list(HEATMAPS), default="none",
                        help="heat map in the written video: raw RGB differences or the S-TDM response")
    parser.add_argument("--threshold", type=float, default=None, help="default: pipeline.threshold")
    parser.add_argument("--smoothing", type=int, default=None, help="windows averaged (default: pipeline.smoothing)")
    parser.add_argument("--loop", action="store_true", help="restart video files at their end")
    parser.add_argument("--no-realtime", dest="realtime", action="store_false",
                        help="read video files as fast as they decode instead of at their frame rate")
    add_model_arguments(parser)


class AnnotatedVideoWriter:
    """Writes every frame of one stream, annotated with its latest prediction, on its own thread."""

    def __init__(self, service, stream_id: str, path: Path, *, heatmap: str, fps: float):
        self.service, self.stream_id, self.path = service, stream_id, path
        self.heatmap, self.fps = heatmap, fps
        self.frames_written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"video {stream_id}", daemon=True)
        self._thread.start()

    def _annotated(self, image):
        latest = self.service.latest(self.stream_id)
        if latest is None:
            return image
        p = latest.prediction
        return annotate(image, p.topk, threshold=p.threshold, heatmap=self.heatmap,
                        segment=[f.image for f in latest.window.frames[-1]],
                        response=None if latest.response is None else latest.response.numpy(),
                        spec=self.service.spec, title=self.stream_id)

    def _run(self) -> None:
        buffer = self.service.source(self.stream_id).buffer
        writer, last = None, None
        try:
            while not self._stop.is_set():
                frames = buffer.wait_for_newer(last, 0.5)
                new = [f for f in frames if last is None or f.index > last]
                for frame in new:
                    if writer is None:
                        h, w = frame.image.shape[:2]
                        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
                    writer.write(cv2.cvtColor(self._annotated(frame.image), cv2.COLOR_RGB2BGR))
                    self.frames_written += 1
                    last = frame.index
                if not frames and self.service.source(self.stream_id).status.state in ("ended", "failed"):
                    return
        finally:
            if writer is not None:
                writer.release()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10.0)


def _video_paths(path: str, count: int) -> list[Path]:
    base = Path(path)
    if count == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(1, count + 1)]


def _text(event: dict) -> str:
    if event["event"] == "status":
        return f"[{event['stream']}] {event['status']}: {event['detail']}"
    labels = ", ".join(f"{e['label']} {e['score']:.2f}" for e in event["topk"]) or "(nothing above threshold)"
    return f"[{event['stream']}] {time.strftime('%H:%M:%S', time.localtime(event['time']))} " \
           f"{event['latency_ms']:6.0f} ms  {labels}"


def main(args: argparse.Namespace) -> int:
    from pipelines.service import RecognitionService
    from pipelines.sources import describe_source
    from pipelines.types import SourceError
    from tdn.cli import config_from_args

    config = config_from_args(args, **model_overrides(args), **{
        "pipeline.threshold": args.threshold, "pipeline.smoothing": args.smoothing})
    print_lock = threading.Lock()

    def show(record: dict) -> None:
        with print_lock:
            print(json.dumps(record) if args.json else _text(record), flush=True)

    failed = 0
    writers: list[AnnotatedVideoWriter] = []
    with RecognitionService(config) as service:
        service.subscribe(lambda event: show(event.to_json()))
        started = []
        for spec in args.source:
            try:
                started.append(service.add_source(spec, realtime=args.realtime, loop=args.loop or None))
            except SourceError:
                failed += 1  # the source has already reported its failed status
            except (ValueError, FileNotFoundError) as exc:
                failed += 1
                show({"event": "status", "stream": describe_source(spec), "status": "failed", "detail": str(exc)})
        if args.write_video and started:
            for sid, path in zip(started, _video_paths(args.write_video, len(started))):
                fps = getattr(service.source(sid), "fps", 0.0) or 25.0
                writers.append(AnnotatedVideoWriter(service, sid, path, heatmap=args.heatmap, fps=fps))
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
            writer.close()
    return 1 if failed else 0
