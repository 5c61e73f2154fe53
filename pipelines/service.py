"""``RecognitionService``: what the app and the CLI share - one model, many streams, clips.

It loads the model once, picks the preprocessing backend, runs one
:class:`~pipelines.engine.InferenceEngine` for every stream, and per stream keeps its own
source, buffer, :class:`~pipelines.scheduler.WindowScheduler`, window thread and
:class:`~pipelines.postprocess.PostProcessor` (never a buffer shared between streams).

Everything it learns goes out as one stream of :mod:`pipelines.events` (prediction,
label_change, status, stats) to the listeners of :meth:`RecognitionService.subscribe`; sinks
that draw frames read them through :meth:`RecognitionService.frames`, never from a buffer.

Example::

    service = RecognitionService(load_config())
    sid = service.add_source("rtsp://user:pw@cam/stream")      # id: the masked URL
    service.subscribe(lambda event: print(event.to_json()))   # every event; or kinds={"label_change"}
    service.latest(sid)                                        # newest PredictionEvent or None
    service.predict_clip("clip.mp4", views="10x3")
    service.close()
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Collection, Iterator

import numpy as np

from pipelines.clip import ClipFrameSink, ClipPrediction, predict_clip
from pipelines.engine import InferenceEngine, StreamCounters, WindowResult
from pipelines.events import (EVENT_KINDS, ErrorEvent, Event, LabelChangeEvent, PredictionEvent, StatsEvent,
                              StatusEvent)
from pipelines.postprocess import NonFiniteScores, PostProcessor, as_json_topk, top_labels
from pipelines.preprocess import create_preprocessor
from pipelines.scheduler import WindowScheduler
from pipelines.sources import PushSource, Source, describe_source, open_source, recent_rate
from pipelines.types import FINAL_STATES, Frame, SourceStatus
from tdn.config import Config
from tdn.export import CLIP_PARTS, LIVE_PARTS
from tdn.transforms import PreprocessSpec
from tdn.video import ProgressCallback

log = logging.getLogger(__name__)

_RECENT = 64  # predictions kept per stream for rate and latency figures
_POLL_S = 0.5  # how long a window thread waits for a new frame before checking whether to stop
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


COMPILE_INTERVAL_S = 1.0  # how often compile_ahead's thread looks for batch sizes without a graph of their own
TRIM_EVERY_S = 60.0  # the stats thread also hands freed heap memory back this often


def release_freed_memory() -> None:
    """Hand memory freed in the heap back to the system. glibc keeps freed blocks in its
    per-thread arenas, so without this a closed stream's frames (about 1 MB each, freed from
    several threads), or what a spell of overload had in flight, stay resident (measured:
    +58 MB after 3 min of overload, all returned by one trim); no-op where the C library has no
    ``malloc_trim``."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


Listener = Callable[[Event], None]


class _Stream:
    """Everything that belongs to one stream.

    gap_t: the latest gap (unix s): the anchor of a restarted window grid, or when the source
    went ``reconnecting``. predicted_t: newest frame time of the last post-processed window. A
    window post-processed after a gap later than ``predicted_t`` starts a fresh smoothing average.
    """

    def __init__(self, source: Source, scheduler: WindowScheduler, post: PostProcessor):
        self.source = source
        self.scheduler = scheduler
        self.post = post
        self.latest: PredictionEvent | None = None
        self.gap_t = -math.inf
        self.predicted_t: float | None = None
        self.emitted: deque[float] = deque(maxlen=_RECENT)
        self.latencies: deque[float] = deque(maxlen=_RECENT)
        self.predictions = 0
        self.removed = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()


def load_service_model(config: Config):
    """The model the config names (``model.weights``; None: the bundled demo model)."""
    from tdn.api import DEMO_WEIGHTS, load_model

    m = config.model
    weights = m.weights if m.weights is not None else DEMO_WEIGHTS
    if not Path(weights).is_file():
        hint = " (the bundled demo model is missing: see weights/README or pass --weights)" if m.weights is None else ""
        raise FileNotFoundError(f"weights file not found: {weights}{hint}")
    return load_model(weights, arch=m.arch, num_segments=m.num_segments, num_classes=m.num_classes,
                      variant=m.variant, device=m.device, precision=m.precision, labels=m.labels, engine=m.engine)


class RecognitionService:
    """One model serving many streams and clip requests; thread-safe (see the module docstring)."""

    def __init__(self, config: Config | None = None, *, model=None):
        self.config = config if config is not None else Config()
        p = self.config.pipeline
        if not p.stats_interval_s > 0:
            raise ValueError(f"pipeline.stats_interval_s must be > 0 seconds, got {p.stats_interval_s}")
        self.model = model if model is not None else load_service_model(self.config)
        self.labels = self.model.meta.labels
        self.spec = PreprocessSpec.from_meta(self.model.meta)
        t = self.model.cfg.num_segments
        self.preprocessor = create_preprocessor(self.spec, p.backend, max_segments=p.max_batch * t)
        self.engine = InferenceEngine(self.model, self.preprocessor, max_batch=p.max_batch, max_wait_ms=p.max_wait_ms,
                                      cache_segments=p.cache_segments, on_result=self._on_result)
        self._streams: dict[str, _Stream] = {}
        self._listeners: list[tuple[Listener, frozenset[str]]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._compiler: threading.Thread | None = None
        self.engine.start()
        self._stats_thread = threading.Thread(target=self._publish_stats, name="stats", daemon=True)
        self._stats_thread.start()

    # -- events ------------------------------------------------------------------------------
    def subscribe(self, listener: Listener, kinds: Collection[str] | None = None) -> Callable[[], None]:
        """Call ``listener`` with every event (see :mod:`pipelines.events`), or only those whose
        ``kind`` is in ``kinds``; from pipeline threads, so keep it quick. Returns a function
        that unsubscribes."""
        wanted = frozenset(EVENT_KINDS if kinds is None else kinds)
        if unknown := wanted - set(EVENT_KINDS):
            raise ValueError(f"unknown event kinds {sorted(unknown)}; kinds: {', '.join(EVENT_KINDS)}")
        entry = (listener, wanted)
        with self._lock:
            self._listeners.append(entry)

        def unsubscribe():
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return unsubscribe

    def _publish(self, event: Event) -> None:
        with self._lock:
            listeners = [listener for listener, kinds in self._listeners if event.kind in kinds]
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the pipeline
                log.exception("event listener failed")

    def _on_status(self, stream: str, status: SourceStatus) -> None:
        if status.state == "reconnecting":
            with self._lock:
                state = self._streams.get(stream)
            if state is not None:
                self._mark_gap(state, status.since)  # frames after it come from a new connection
        self._publish(StatusEvent(stream, status))

    @staticmethod
    def _mark_gap(state: _Stream, t: float) -> None:
        with state.lock:
            state.gap_t = max(state.gap_t, t)

    def _publish_stats(self) -> None:
        """The stats thread: a :class:`StatsEvent` every ``pipeline.stats_interval_s`` per stream
        whose source has not ended or failed (:meth:`stats` still has their last figures); every
        ``TRIM_EVERY_S`` it also calls :func:`release_freed_memory`, so RSS follows what is in use."""
        trimmed = time.monotonic()
        while not self._closing.wait(self.config.pipeline.stats_interval_s):
            for event in self.stats().values():
                if event.state not in FINAL_STATES:
                    self._publish(event)
            if time.monotonic() - trimmed >= TRIM_EVERY_S:
                release_freed_memory()
                trimmed = time.monotonic()

    # -- streams -----------------------------------------------------------------------------
    def add_source(self, spec: str | int, *, stream_id: str | None = None, realtime: bool | None = None,
                   loop: bool | None = None) -> str:
        """Open and start a camera index, stream URL or video file; returns its stream id (by
        default the masked spec). Raises ValueError/FileNotFoundError/SourceError for bad specs."""
        stream_id = self._new_id(stream_id or describe_source(spec))
        source = open_source(spec, config=self.config.pipeline, stream_id=stream_id, on_status=self._on_status,
                             realtime=realtime, loop=loop)
        return self._start_stream(source)

    def add_push_source(self, stream_id: str = "push") -> str:
        """A stream fed by :meth:`push_frame` (e.g. a browser webcam); returns its id."""
        p = self.config.pipeline
        from pipelines.buffer import FrameBuffer

        source = PushSource(self._new_id(stream_id), on_status=self._on_status, max_side=p.capture_max_side or None,
                            buffer=FrameBuffer.for_settings(p))
        return self._start_stream(source)

    def push_frame(self, stream_id: str, image: np.ndarray, t: float | None = None, *, bgr: bool = False) -> None:
        """Give a push stream its next uint8 ``(H, W, 3)`` frame (RGB unless ``bgr``), stamped now or at ``t``."""
        source = self._stream(stream_id).source
        if not isinstance(source, PushSource):
            raise ValueError(f"stream {stream_id} reads its own frames; push_frame is for push streams only")
        source.push(image, t, bgr=bgr)

    def remove_source(self, stream_id: str) -> None:
        """Stop a stream and forget its state (pending windows, cached segments, counters)."""
        with self._lock:
            state = self._streams.pop(stream_id, None)
        if state is None:
            raise ValueError(f"no stream {stream_id!r}; streams: {', '.join(self.streams()) or 'none'}")
        state.removed.set()
        state.source.stop()
        if state.thread is not None:
            state.thread.join(10.0)
        self.engine.forget_stream(stream_id)
        del state  # the last reference to the stream's buffer: its frames are freed here
        release_freed_memory()

    def source(self, stream_id: str) -> Source:
        """The stream's source (its status, stats and nominal ``fps``; frames come from :meth:`frames`)."""
        return self._stream(stream_id).source

    def frames(self, stream_id: str, *, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Each frame of the stream in capture order, from the oldest it still holds, until the
        stream ends or is removed, or ``stop`` is set. Nothing queues for a slow reader: it skips
        the frames that left the stream's rolling buffer (``pipeline.buffer_seconds`` /
        ``buffer_max_frames``) before it got to them."""
        state, last = self._stream(stream_id), None
        while not state.removed.is_set() and not (stop is not None and stop.is_set()):
            frames = state.source.buffer.wait_for_newer(last, _POLL_S)
            if not frames and state.source.status.state in FINAL_STATES:
                return
            for frame in frames:
                if last is None or frame.index > last:
                    last = frame.index
                    yield frame

    def latest_frame(self, stream_id: str) -> Frame | None:
        """The stream's newest frame (None before the first)."""
        return self._stream(stream_id).source.buffer.latest()

    def streams(self) -> list[str]:
        with self._lock:
            return list(self._streams)

    def _new_id(self, wanted: str) -> str:
        with self._lock:
            stream_id, n = wanted, 2
            while stream_id in self._streams:
                stream_id, n = f"{wanted} #{n}", n + 1
            return stream_id

    def _stream(self, stream_id: str) -> _Stream:
        with self._lock:
            state = self._streams.get(stream_id)
        if state is None:
            raise ValueError(f"no stream {stream_id!r}; streams: {', '.join(self.streams()) or 'none'}")
        return state

    def _start_stream(self, source: Source) -> str:
        p = self.config.pipeline
        scheduler = WindowScheduler(num_segments=self.model.cfg.num_segments, window_seconds=p.window_seconds,
                                    max_gap_s=p.max_frame_gap_s, segment_step_s=self.model.meta.segment_step_s)
        state = _Stream(source, scheduler, PostProcessor(self.labels, smoothing=p.smoothing, threshold=p.threshold,
                                                         topk=p.topk))
        with self._lock:
            if source.stream_id in self._streams:
                raise ValueError(f"stream id {source.stream_id!r} is already in use")
            self._streams[source.stream_id] = state
        try:
            source.start()
        except Exception:
            with self._lock:
                self._streams.pop(source.stream_id, None)
            raise
        state.thread = threading.Thread(target=self._schedule, args=(state,), name=f"windows {source.stream_id}",
                                        daemon=True)
        state.thread.start()
        return source.stream_id

    def _schedule(self, state: _Stream) -> None:
        """The window thread of one stream: buffer snapshots -> scheduler -> engine. A new grid
        anchor (the grid restarted after a gap) marks a gap for the post-processor."""
        source, scheduler, last_index, anchor = state.source, state.scheduler, None, None
        while not state.removed.is_set():
            frames = source.buffer.wait_for_newer(last_index, _POLL_S)
            if not frames:
                if source.status.state in FINAL_STATES:
                    return
                continue
            last_index = frames[-1].index
            window = scheduler.next_window(source.stream_id, frames)
            if scheduler.anchor is not None and scheduler.anchor != anchor:
                anchor = scheduler.anchor  # windows of this grid have frames at or after it, earlier ones before
                self._mark_gap(state, anchor)
            if window is not None and not state.removed.is_set():
                self.engine.submit(window)

    def _on_result(self, result: WindowResult) -> None:
        with self._lock:
            state = self._streams.get(result.window.stream)
        if state is None:
            return  # removed meanwhile
        window = result.window
        with state.lock:
            if state.predicted_t is not None and state.gap_t > state.predicted_t:
                state.post.reset()  # a gap since the previous window: never average across it
            state.predicted_t = window.newest_t
            try:
                prediction = state.post.update(result.logits)
            except NonFiniteScores as exc:
                event = ErrorEvent(stream=window.stream, time=window.newest_t, detail=str(exc))
            else:
                event = PredictionEvent(stream=window.stream, time=window.newest_t, latency_ms=result.latency_ms,
                                        prediction=prediction, response=result.response, window=window)
                state.latest = event
                state.predictions += 1
                state.emitted.append(result.emitted)
                state.latencies.append(result.latency_ms)
        self._publish(event)
        if isinstance(event, PredictionEvent) and prediction.changed:
            self._publish(LabelChangeEvent(stream=window.stream, time=window.newest_t, previous=prediction.previous,
                                           label=prediction.label, score=prediction.topk[0][1]))

    # -- queries -----------------------------------------------------------------------------
    def latest(self, stream_id: str) -> PredictionEvent | None:
        """The stream's newest :class:`PredictionEvent` (None before the first)."""
        state = self._stream(stream_id)
        with state.lock:
            return state.latest

    def status(self) -> dict[str, SourceStatus]:
        with self._lock:
            states = dict(self._streams)
        return {sid: s.source.status for sid, s in states.items()}

    def stats(self) -> dict[str, StatsEvent]:
        """Every stream's figures now: the :class:`StatsEvent` s the stats thread publishes."""
        with self._lock:
            states = dict(self._streams)
        engine = self.engine.stats().streams
        return {sid: self._stats_event(s, engine.get(sid)) for sid, s in states.items()}

    @staticmethod
    def _stats_event(s: _Stream, counters: StreamCounters | None) -> StatsEvent:
        """The stream's figures now; rates are 0 unless the source is ``live`` (nothing flows then)."""
        source_stats, status, now = s.source.stats(), s.source.status, time.time()
        with s.lock:
            emitted, latencies, predictions = list(s.emitted), list(s.latencies), s.predictions
        live = status.state == "live"
        return StatsEvent(
            stream=s.source.stream_id, time=now, state=status.state, detail=status.detail,
            fps=source_stats.fps if live else 0.0,
            prediction_rate=recent_rate(emitted, now - emitted[-1]) if live and emitted else 0.0,
            latency_ms_p50=float(np.percentile(latencies, 50)) if latencies else None,
            latency_ms_p95=float(np.percentile(latencies, 95)) if latencies else None,
            predictions=predictions, dropped_windows=s.scheduler.skipped + (counters.dropped if counters else 0),
            frames_read=source_stats.frames_read, frames_evicted=s.source.buffer.evicted,
            reconnects=source_stats.reconnects, outages=source_stats.outages, outage_s=source_stats.outage_s,
            current_outage_s=source_stats.current_outage_s,
        )

    # -- clips -------------------------------------------------------------------------------
    def predict_clip(self, path: str | Path, *, views: str = "1x1", per_window: bool = False,
                     progress: ProgressCallback | None = None, sink: ClipFrameSink | None = None) -> ClipPrediction:
        """Score an uploaded clip (TDN test protocol; ``per_window`` adds the live-style timeline,
        and feeds ``sink`` the frames and windows as they come)."""
        p = self.config.pipeline
        return predict_clip(self.engine, path, views=views, per_window=per_window, window_seconds=p.window_seconds,
                            max_gap_s=p.max_frame_gap_s, limit_mb=p.clip_memory_mb, progress=progress, sink=sink)

    def topk(self, scores: np.ndarray, k: int | None = None) -> list[dict]:
        """``[{"label", "score"}]`` of the ``k`` (default ``pipeline.topk``) best classes of a score vector."""
        return as_json_topk(top_labels(scores, self.labels, self.config.pipeline.topk if k is None else k))

    # -- lifecycle ---------------------------------------------------------------------------
    def wait_until_ended(self, timeout: float | None = None) -> bool:
        """Wait until every stream's source has ended or failed, its window thread finished and the
        engine has scored what they left; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            states = list(self._streams.values())
        for state in states:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if state.thread is not None:
                state.thread.join(remaining)
                if state.thread.is_alive():
                    return False
        return self.engine.wait_idle(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- ONNX engines' graphs ---------------------------------------------------------------
    def compile_ahead(self, *, wait: bool = False, parts: tuple[str, ...] = LIVE_PARTS + CLIP_PARTS) -> None:
        """For a model run by an ONNX engine (nothing for torch): compile its graphs for ``parts`` now
        rather than on their first use (:meth:`tdn.engines.EngineModel.compile_graphs`), then, every
        ``COMPILE_INTERVAL_S`` until :meth:`close`, graphs of their own for the batch sizes that the
        streams bring, so the live path never waits for a compilation. With ``wait`` the first step
        runs before this returns and a graph the engine cannot compile raises a ValueError naming the
        engine; else it runs in the background too and a failure is logged (and repeats on first use)."""
        if getattr(self.model, "engine", "torch") == "torch" or self._compiler is not None:
            return
        if wait:
            self._compile_graphs(parts, raise_errors=True)
        self._compiler = threading.Thread(target=self._keep_compiling, args=(() if wait else parts,),
                                          name="compile engine", daemon=True)
        self._compiler.start()

    def _compile_graphs(self, parts: tuple[str, ...], raise_errors: bool) -> None:
        try:
            self.model.compile_graphs(parts)
        except Exception as exc:
            if raise_errors:
                raise ValueError(f"the {self.model.engine} engine could not compile this model: {exc}") from exc
            log.exception("compiling the %s graphs failed; they will be compiled (and fail) on first use",
                          self.model.engine)

    def _keep_compiling(self, parts_first: tuple[str, ...]) -> None:
        if parts_first:
            self._compile_graphs(parts_first, raise_errors=False)
        while not self._closing.wait(COMPILE_INTERVAL_S):
            try:
                self.model.compile_wanted()
            except Exception:  # the any-batch graph keeps serving; the failure is in the log
                log.exception("compiling %s graphs for new batch sizes failed", self.model.engine)

    def close(self) -> None:
        """Remove every stream and stop the engine; first, a background compile must end (OpenVINO
        aborts the process, "terminate called without an active exception", if it exits mid-compile)."""
        self._closing.set()
        self._stats_thread.join(10.0)
        if self._compiler is not None:
            self._compiler.join(1.0)  # between compilations it ends at once
            if self._compiler.is_alive():
                log.warning("waiting for the %s graphs to finish compiling before closing", self.model.engine)
                self._compiler.join()
        for sid in self.streams():
            self.remove_source(sid)
        self.engine.stop()

    def __enter__(self) -> "RecognitionService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
