"""Data that crosses the pipeline's boundaries: frames, windows, source status and stats.

A source's capture thread makes :class:`Frame` objects and puts them into its rolling
buffer; the window scheduler reads buffered frames and emits :class:`Window` objects;
preprocessing turns a window into the model's float32 ``(T, L, 3, H, W)`` layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SourceState = Literal["connecting", "live", "reconnecting", "ended", "failed"]
SOURCE_STATES: tuple[str, ...] = ("connecting", "live", "reconnecting", "ended", "failed")
FINAL_STATES: frozenset[str] = frozenset({"ended", "failed"})  # a source in these never delivers again


class SourceError(ValueError):
    """A source cannot be opened or read; the message names the (masked) source."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured frame.

    image: uint8 ``(H, W, 3)`` RGB (converted once, at capture; read-only, shared by windows).
    t: capture time in unix seconds (for files paced in real time: the frame's time on the
       file's timeline, anchored at the moment playback started).
    index: 0, 1, 2, ... per source, in capture order (gaps never occur; drops show in ``t``).
    """

    image: np.ndarray
    t: float
    index: int


@dataclass(frozen=True, eq=False)
class Window:
    """T segments of L frames, ready for preprocessing.

    stream: the id of the source the frames came from.
    centres: the T segment centre times on the scheduler's grid (unix seconds, ascending).
       Consecutive windows of a stream share T-1 centres, so ``(stream, centre)`` keys a
       per-segment feature cache.
    frames: T tuples of L frames; ``frames[i][L // 2]`` is the captured frame nearest to
       ``centres[i]``, the others its captured neighbours in time order.
    newest_t: capture time of the newest frame the window uses (latency is measured from it).
    """

    stream: str
    centres: tuple[float, ...]
    frames: tuple[tuple[Frame, ...], ...]
    newest_t: float


@dataclass(frozen=True)
class SourceStatus:
    """Where a source stands: ``state`` (one of :data:`SOURCE_STATES`), a human-readable
    ``detail`` (URL credentials already masked) and ``since``, the unix time it was entered."""

    state: SourceState
    detail: str
    since: float


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source.

    frames_read: frames delivered by the camera, stream, file or pusher so far.
    dropped: frames the source read but discarded (the stale backlog a stream returns in a burst
       right after it (re)connects; pushed frames not newer than the previous one). Evictions
       from the rolling buffer are counted by the buffer, not here.
    reconnects: times a lost stream was reopened.
    fps: capture rate over the last 32 frames (by their capture times), falling once frames stop
       (:func:`~pipelines.sources.recent_rate`).
    outages: times the stream was lost (the current outage included); outage_s: seconds without
       frames in them, from the newest frame before each loss to the first after it (the current
       one up to now); current_outage_s: the current outage's seconds so far, None while frames flow.
    """

    frames_read: int
    dropped: int
    reconnects: int
    fps: float
    outages: int = 0
    outage_s: float = 0.0
    current_outage_s: float | None = None
