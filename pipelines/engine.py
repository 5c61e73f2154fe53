"""The inference engine: one model, all streams, bounded latency.

Windows arrive from each stream's scheduler through :meth:`InferenceEngine.submit`. Each
stream has ONE pending slot: a window that arrives while the previous one of its stream still
waits replaces it (latest wins) and the replaced one counts as dropped. The engine thread takes
ready windows across streams (at most ``max_batch``, waiting up to ``max_wait_ms`` for a batch
to fill) in round-robin order: a stream just served goes to the back of the line. So a slow
model shows as dropped windows and a lower prediction rate, shared evenly by the streams, never
as a growing queue.

Per-segment early features (``model.forward_segments``: stem, stage 1, S-TDM) are cached in a
bounded :class:`SegmentCache` keyed by ``(stream, centre time, frame indices)``; consecutive
windows share T-1 centres, so usually one segment per window is preprocessed and run, and a
stream's segments older than its newest window's first centre are dropped at once. Then
``model.forward_temporal`` mixes the T segments. Cached results equal a full recompute
(tested to 1e-4 in fp32).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import torch

from pipelines.preprocess import Preprocessor
from pipelines.types import Window

log = logging.getLogger(__name__)

SegmentKey = tuple[str, float, tuple[int, ...]]  # (stream, centre time, frame indices)


def segment_key(window: Window, i: int) -> SegmentKey:
    """Cache key of segment ``i`` of ``window``: same stream, centre and frames -> same features."""
    return window.stream, window.centres[i], tuple(f.index for f in window.frames[i])


class SegmentCache:
    """Bounded LRU of per-segment ``(features, response)``, at most ``capacity`` entries in all."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"segment cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Hashable, value: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def drop_stream(self, stream: str, before: float | None = None) -> None:
        """Forget a stream's entries (only those centred before ``before``, when given)."""
        for key in [k for k in self._entries if k[0] == stream and (before is None or k[1] < before)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class WindowResult:
    """The model's answer for one window.

    logits: float32 ``(K,)``. response: the S-TDM response of the window's newest segment,
    float32 ``(S/4, S/4)`` over the centre crop (None for variants without S-TDM).
    emitted: unix time the result was ready; latency_ms = emitted - window.newest_t.
    batch_size: windows in the model call that produced it.
    """

    window: Window
    logits: torch.Tensor
    response: torch.Tensor | None
    emitted: float
    batch_size: int

    @property
    def latency_ms(self) -> float:
        return 1000.0 * (self.emitted - self.window.newest_t)


@dataclass
class StreamCounters:
    """Per-stream counts: windows submitted, dropped (replaced while pending), predicted."""

    submitted: int = 0
    dropped: int = 0
    predicted: int = 0


@dataclass
class EngineStats:
    batches: int = 0
    windows: int = 0
    segments_computed: int = 0
    cache_hits: int = 0
    streams: dict[str, StreamCounters] = field(default_factory=dict)
    busy_s: float = 0.0  # time spent preprocessing and in the model (windows / busy_s: the windows/s it sustains)


ResultCallback = Callable[[WindowResult], None]


class InferenceEngine:
    """Batches windows across streams through one model; see the module docstring.

    ``on_result`` is called on the engine thread for every result (keep it quick).
    ``cache_segments=False`` recomputes every segment (the reference the cache must equal).
    Use :meth:`run_windows` to run windows synchronously (no thread, no dropping).
    """

    def __init__(self, model, preprocessor: Preprocessor, *, max_batch: int = 8, max_wait_ms: float = 20.0,
                 cache_segments: bool = True, cache_capacity: int | None = None,
                 on_result: ResultCallback | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.model = model
        self.preprocessor = preprocessor
        self.num_segments = model.cfg.num_segments
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.cache_segments = cache_segments
        # room for two windows' worth of segments per batch slot: every stream of a full batch
        # keeps its T-1 shared segments between consecutive windows
        self.cache = SegmentCache(cache_capacity or 2 * max_batch * self.num_segments)
        self.on_result = on_result
        self.model_lock = threading.Lock()  # one model call at a time (live batches, clip predictions)
        self._pending: dict[str, tuple[float, Window]] = {}  # stream -> (waiting since, window): one slot each
        self._turns: OrderedDict[str, None] = OrderedDict()  # every known stream, next to be served first
        self._cond = threading.Condition()
        self._stats = EngineStats()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False  # the engine thread holds a batch

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "InferenceEngine":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="inference engine", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- input -----------------------------------------------------------------------------
    def submit(self, window: Window) -> None:
        """Queue ``window`` for its stream, replacing (and counting as dropped) one still pending.

        A replacement keeps the time the stream began waiting (which starts the batch's
        ``max_wait`` clock) and the stream's place in the round-robin line.
        """
        if len(window.centres) != self.num_segments:
            raise ValueError(f"window of stream {window.stream} has {len(window.centres)} segments; "
                             f"the model expects {self.num_segments}")
        with self._cond:
            counters = self._stats.streams.setdefault(window.stream, StreamCounters())
            counters.submitted += 1
            previous = self._pending.get(window.stream)
            if previous is not None:
                counters.dropped += 1
            self._pending[window.stream] = (time.monotonic() if previous is None else previous[0], window)
            self._turns.setdefault(window.stream)  # a new stream joins the back of the line
            self._cond.notify_all()

    def forget_stream(self, stream: str) -> None:
        """Drop a removed stream's pending window, cached segments and counters."""
        with self._cond:
            self._pending.pop(stream, None)
            self._turns.pop(stream, None)
            self._stats.streams.pop(stream, None)
        with self.model_lock:
            self.cache.drop_stream(stream)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no window is pending or being scored; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    # -- stats -----------------------------------------------------------------------------
    def stats(self) -> EngineStats:
        """A copy of the counters."""
        with self._cond:
            s = self._stats
            return EngineStats(s.batches, s.windows, s.segments_computed, s.cache_hits,
                               {k: StreamCounters(**vars(v)) for k, v in s.streams.items()}, s.busy_s)

    # -- the engine thread -----------------------------------------------------------------
    def _take_batch(self) -> list[Window] | None:
        """Wait for a window, then up to ``max_wait`` for a full batch; None when stopping."""
        with self._cond:
            while True:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return None
                deadline = min(t for t, _ in self._pending.values()) + self.max_wait_s
                while 0 < len(self._pending) < self.max_batch and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stopping:
                    return None
                if self._pending:  # (a removed stream may have taken the only pending window)
                    break
            chosen = [stream for stream in self._turns if stream in self._pending][: self.max_batch]
            for stream in chosen:
                self._turns.move_to_end(stream)  # served: to the back of the line
            self._busy = True
            return [self._pending.pop(stream)[1] for stream in chosen]

    def _loop(self) -> None:
        while self._serve_batch():
            pass

    def _serve_batch(self) -> bool:
        """Run the next batch and hand out its results; False when the engine stops. (A method of
        its own so that the batch's windows, and their frames, are freed before the next wait.)"""
        batch = self._take_batch()
        if batch is None:
            return False
        try:
            results = self.run_windows(batch)
            with self._cond:
                for result in results:
                    counters = self._stats.streams.get(result.window.stream)
                    if counters is not None:
                        counters.predicted += 1
            if self.on_result is not None:
                for result in results:
                    self.on_result(result)
        except Exception:  # keep serving the other streams; the failure is in the log
            log.exception("inference or its result callback failed for a batch of %d windows", len(batch))
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return True

    # -- the model -------------------------------------------------------------------------
    @torch.inference_mode()
    def run_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        """Run windows through the model now (in one batch), using and filling the cache."""
        with self.model_lock:
            started = time.perf_counter()
            features, responses, computed, hits = self._segment_features(windows)
            stacked = torch.stack([torch.stack(f) for f in features])  # T x (C, h, w) per window -> (N, T, C, h, w)
            logits = self.model.forward_temporal(stacked).cpu()
            busy = time.perf_counter() - started
        emitted = time.time()
        with self._cond:
            self._stats.busy_s += busy
            self._stats.batches += 1
            self._stats.windows += len(windows)
            self._stats.segments_computed += computed
            self._stats.cache_hits += hits
        return [WindowResult(w, logits[i], responses[i], emitted, len(windows)) for i, w in enumerate(windows)]

    def _segment_features(self, windows: Sequence[Window]):
        """Features of every segment of every window: from the cache, or computed in one
        ``forward_segments`` call for all missing segments (each distinct segment once)."""
        keys = [[segment_key(w, i) for i in range(len(w.centres))] for w in windows]
        found: dict[SegmentKey, tuple[torch.Tensor, torch.Tensor | None]] = {}
        missing: dict[SegmentKey, tuple[Window, int]] = {}
        hits = 0
        for w, window_keys in zip(windows, keys):
            for i, key in enumerate(window_keys):
                if key in found or key in missing:
                    continue
                entry = self.cache.get(key) if self.cache_segments else None
                if entry is None:
                    missing[key] = (w, i)
                else:
                    found[key] = entry
                    hits += 1
        if missing:
            images = [[f.image for f in w.frames[i]] for w, i in missing.values()]
            segments = self.preprocessor.segments(images)  # (M, L, 3, S, S)
            feats, resp = self.model.forward_segments_with_response(segments)
            for j, key in enumerate(missing):
                # clone: a cached slice must not keep the whole batch's tensor alive
                entry = (feats[j].clone(), None if resp is None else resp[j].clone())
                found[key] = entry
                if self.cache_segments:
                    self.cache.put(key, entry)
        if self.cache_segments:  # windows only move forward: segments before a window's first centre are done
            for w in windows:
                self.cache.drop_stream(w.stream, before=w.centres[0])
        features = [[found[k][0] for k in window_keys] for window_keys in keys]
        responses = [found[window_keys[-1]][1] for window_keys in keys]  # the newest segment's
        responses = [None if r is None else r.float().cpu() for r in responses]
        return features, responses, len(missing), hits
