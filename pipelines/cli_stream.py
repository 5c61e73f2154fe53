"""``tdn stream --source SRC [--source SRC ...]``: live predictions as JSON lines (``--json``).

Each prediction: ``{"event": "prediction", "stream": ID, "time": <capture time of the window's
newest frame, unix s>, "latency_ms": <emit time - that capture time>, "topk": [{"label",
"score"}, ...]}`` (entries below ``--threshold`` left out); each status change:
``{"event": "status", "stream": ID, "status": "live|reconnecting|ended|failed", "detail": str}``;
a window the model scored with non-finite output: ``{"event": "error", "stream": ID, "time": t,
"detail": str}`` (the exit code is then 1).
Runs until every source has ended, ``--duration`` seconds have passed, or Ctrl-C.
``--write-video PATH`` writes every captured frame annotated with the stream's latest
prediction (one file per ``--source``: ``PATH`` for one, ``PATH`` with ``_1``, ``_2``... otherwise).
The paths are checked before anything starts; each video is written under a hidden
``.NAME.partial`` name and renamed to ``PATH`` once complete (removed if it fails).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import cv2

from pipelines.cli_predict import add_model_arguments, model_overrides
from pipelines.overlay import HEATMAPS, annotate
from tdn.cli import bounded
from tdn.video import DEFAULT_FPS, open_writer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", required=True, metavar="SRC",
                        help="camera index, rtsp/http(s) URL or video file (repeatable)")
    parser.add_argument("--duration", type=bounded(float, 0, 1e9, lo_open=True), default=None,
                        help="stop after this many seconds")
    parser.add_argument("--write-video", default=None, metavar="PATH", help="write annotated video (.mp4)")
    parser.add_argument("--heatmap", choices=list(HEATMAPS), default="none",
                        help="heat map in the written video: raw RGB differences or the S-TDM response")
    parser.add_argument("--threshold", type=float, default=None, help="default: pipeline.threshold")
    parser.add_argument("--smoothing", type=int, default=None, help="windows averaged (default: pipeline.smoothing)")
    parser.add_argument("--loop", action="store_true", help="restart video files at their end")
    parser.add_argument("--no-realtime", dest="realtime", action="store_false",
                        help="read video files as fast as they decode instead of at their frame rate")
    add_model_arguments(parser)


FOURCC = "mp4v"


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete (same folder and extension, hidden)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def check_video_path(path: Path) -> None:
    """Refuse, before anything starts, a video output that cannot be written (ValueError/FileNotFoundError)."""
    if path.is_dir():
        raise ValueError(f"--write-video {path} is a directory; give a file name such as {path / 'out.mp4'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--write-video {path}: folder {path.parent} does not exist")
    probe = partial_path(path)
    try:
        open_writer(probe, FOURCC, DEFAULT_FPS, (64, 64)).release()
    except ValueError:
        raise ValueError(f"--write-video {path}: cannot write {FOURCC} video there (is the folder writable, "
                         "and the extension one OpenCV writes, such as .mp4 or .avi?)") from None
    finally:
        probe.unlink(missing_ok=True)


class AnnotatedVideoWriter:
    """Writes every frame of one stream, annotated with its latest prediction, on its own thread.

    Frames go to :func:`partial_path`, renamed to ``path`` when the writer ends; ``error`` is
    set (and nothing left behind) if writing failed.
    """

    def __init__(self, service, stream_id: str, path: Path, *, heatmap: str, fps: float):
        self.service, self.stream_id, self.path = service, stream_id, path
        self.heatmap, self.fps = heatmap, fps
        self.frames_written = 0
        self.error: str | None = None
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
        partial = partial_path(self.path)
        writer, last = None, None
        try:
            while not self._stop.is_set():
                frames = buffer.wait_for_newer(last, 0.5)
                new = [f for f in frames if last is None or f.index > last]
                for frame in new:
                    if writer is None:
                        h, w = frame.image.shape[:2]
                        writer = open_writer(partial, FOURCC, self.fps, (w, h))
                    writer.write(cv2.cvtColor(self._annotated(frame.image), cv2.COLOR_RGB2BGR))
                    self.frames_written += 1
                    last = frame.index
                if not frames and self.service.source(self.stream_id).status.state in ("ended", "failed"):
                    return
        except Exception as exc:  # noqa: BLE001 - reported by main, the partial file removed below
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                writer.release()
            if self.error is None and self.frames_written:
                try:
                    os.replace(partial, self.path)
                except OSError as exc:
                    self.error = str(exc)
            partial.unlink(missing_ok=True)  # gone after the rename; otherwise incomplete

    def close(self) -> str:
        """Stop, finish the file and say what became of it (for stderr)."""
        self._stop.set()
        self._thread.join(10.0)
        if self._thread.is_alive():
            self.error = "still writing after 10 s"
        if self.error:
            return f"video of {self.stream_id} not written to {self.path}: {self.error}"
        if not self.frames_written:
            return f"video of {self.stream_id} not written to {self.path}: no frames were captured"
        return f"wrote {self.frames_written} frames of {self.stream_id} to {self.path}"


def _video_paths(path: str, count: int) -> list[Path]:
    base = Path(path)
    if count == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(1, count + 1)]


def _text(event: dict) -> str:
    if event["event"] == "status":
        return f"[{event['stream']}] {event['status']}: {event['detail']}"
    if event["event"] == "error":
        return f"[{event['stream']}] error: {event['detail']}"
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
    video_paths = _video_paths(args.write_video, len(args.source)) if args.write_video else []
    for path in video_paths:
        check_video_path(path)
    print_lock = threading.Lock()
    errors = 0

    def show(record: dict) -> None:
        nonlocal errors
        with print_lock:
            errors += record["event"] == "error"
            print(json.dumps(record, allow_nan=False) if args.json else _text(record), flush=True)

    failed = 0
    writers: list[AnnotatedVideoWriter] = []
    with RecognitionService(config) as service:
        service.subscribe(lambda event: show(event.to_json()))
        started = []
        for i, spec in enumerate(args.source):
            try:
                sid = service.add_source(spec, realtime=args.realtime, loop=args.loop or None)
            except SourceError:
                failed += 1  # the source has already reported its failed status
                continue
            except (ValueError, FileNotFoundError) as exc:
                failed += 1
                show({"event": "status", "stream": describe_source(spec), "status": "failed", "detail": str(exc)})
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
