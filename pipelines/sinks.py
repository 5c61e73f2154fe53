"""Sinks of the service's event stream (used by ``tdn stream``): each subscribes to
:meth:`~pipelines.service.RecognitionService.subscribe` and, for frames, to
:meth:`~pipelines.service.RecognitionService.frames`; none reads a source's buffer.

- :class:`EventPrinter`: one line per event, JSON (``to_json``) or a short text form.
- :class:`AnnotatedVideoWriter`: every frame of one stream, annotated with its latest prediction.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import cv2

from pipelines.events import Event, PredictionEvent
from pipelines.overlay import annotate
from tdn.files import partial_path
from tdn.video import DEFAULT_FPS, open_writer


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def event_text(record: dict) -> str:
    """The text form of an event's JSON ``record`` (``tdn stream`` without ``--json``)."""
    head, kind = f"[{record['stream']}]", record["event"]
    if kind == "status":
        return f"{head} {record['status']}: {record['detail']}"
    if kind == "error":
        return f"{head} error: {record['detail']}"
    if kind == "stats":
        return (f"{head} {record['state']}, {record['fps']:.1f} fps, {record['prediction_rate']:.1f} predictions/s, "
                f"latency p50 {_ms(record['latency_ms_p50'])} / p95 {_ms(record['latency_ms_p95'])} ms, "
                f"{record['dropped_windows']} dropped windows, {record['frames_read']} frames"
                + (f", {record['outages']} outages ({record['outage_s']:.1f} s without frames)" if record["outages"]
                   else ""))
    clock = time.strftime('%H:%M:%S', time.localtime(record['time']))
    if kind == "label_change":
        before, after = (record[key] or "(nothing above threshold)" for key in ("from", "to"))
        return f"{head} {clock} label: {before} -> {after} (top-1 {record['score']:.2f})"
    labels = ", ".join(f"{e['label']} {e['score']:.2f}" for e in record["topk"]) or "(nothing above threshold)"
    return f"{head} {clock} {record['latency_ms']:6.0f} ms  {labels}"


class EventPrinter:
    """A listener that prints each event as one line: strict JSON (``as_json``) or :func:`event_text`,
    to ``out`` (default: the current ``sys.stdout``), flushed; safe to call from several threads."""

    def __init__(self, *, as_json: bool, out: TextIO | None = None):
        self.as_json, self.out = as_json, out
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        record = event.to_json()
        line = json.dumps(record, allow_nan=False) if self.as_json else event_text(record)
        with self._lock:
            print(line, file=self.out or sys.stdout, flush=True)


FOURCC = "mp4v"


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

    Frames go to :func:`partial_path`, renamed to ``path`` when the writer ends; ``error`` is set
    (and nothing left behind) if writing failed.
    """

    def __init__(self, service, stream_id: str, path: Path, *, heatmap: str, fps: float):
        self.service, self.stream_id, self.path = service, stream_id, path
        self.heatmap, self.fps = heatmap, fps
        self.frames_written = 0
        self.error: str | None = None
        self._latest: PredictionEvent | None = None
        self._stop = threading.Event()
        self._unsubscribe = service.subscribe(self._on_prediction, kinds={"prediction"})
        self._thread = threading.Thread(target=self._run, name=f"video {stream_id}", daemon=True)
        self._thread.start()

    def _on_prediction(self, event: PredictionEvent) -> None:
        if event.stream == self.stream_id:
            self._latest = event

    def _annotated(self, image):
        latest = self._latest
        if latest is None:
            return image
        p = latest.prediction
        return annotate(image, p.topk, threshold=p.threshold, heatmap=self.heatmap,
                        segment=[f.image for f in latest.window.frames[-1]],
                        response=None if latest.response is None else latest.response.numpy(),
                        spec=self.service.spec, title=self.stream_id)

    def _run(self) -> None:
        partial = partial_path(self.path)
        writer = None
        try:
            for frame in self.service.frames(self.stream_id, stop=self._stop):
                if writer is None:
                    h, w = frame.image.shape[:2]
                    writer = open_writer(partial, FOURCC, self.fps, (w, h))
                writer.write(cv2.cvtColor(self._annotated(frame.image), cv2.COLOR_RGB2BGR))
                self.frames_written += 1
        except Exception as exc:  # noqa: BLE001 - reported by close(); the partial file is removed below
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
        self._unsubscribe()
        if self._thread.is_alive():
            self.error = "still writing after 10 s"
        if self.error:
            return f"video of {self.stream_id} not written to {self.path}: {self.error}"
        if not self.frames_written:
            return f"video of {self.stream_id} not written to {self.path}: no frames were captured"
        return f"wrote {self.frames_written} frames of {self.stream_id} to {self.path}"
