"""Window scheduler: TDN-shaped sliding windows on a fixed grid of segment centres in *time*.

Segment centres sit on a grid ``anchor + k * spacing`` (``spacing = window_seconds / T``).
Centre ``k`` is *complete* once a frame at or after it has been captured and the right
neighbours of the frame nearest to it can no longer change. When a new centre completes, the
scheduler emits the window of the latest T complete centres; each segment is the captured
frame nearest to its centre (the earlier one on a tie) with ``neighbours`` (2) captured frames on
each side, chosen by the model's segment step (``segment_step_s``, :func:`tdn.sampling.neighbour_indices`:
the frames nearest to ``+- k * step``, never a duplicate; step 0: the adjacent captured frames),
so L = 5 frames. Consecutive windows share T-1 centres (the same
float times), which makes ``(stream, centre)`` a key for per-segment feature caches.

The grid is anchored at the third frame (``neighbours`` frames after the first; later when the
segment step reaches further back) so every segment has real left neighbours, and restarts the same way after a pause longer than
``max_gap_s`` between two captured frames (a stall or a reconnect): windows never mix frames
from both sides of a gap, and the first window after it waits for T fresh centres. A gap counts
even when the frames before it have already left the buffer (an outage longer than the buffer
holds): the newest time of the previous call stands in for them. Windows whose centres fell in
a gap never existed, so they are not counted as skipped.

Worked example: T = 4, ``window_seconds = 1.2`` (spacing 0.3 s), step 0, frames every 0.1 s from t = 0::

    anchor = 0.2 (the third frame); centres 0.2, 0.5, 0.8, 1.1, 1.4, ...
    frame 1.3 arrives -> centre 1.1 is complete (1.2 and 1.3 follow it): first window
        centres (0.2, 0.5, 0.8, 1.1)
        segments [0.0 0.1 0.2 0.3 0.4] [0.3 .. 0.7] [0.6 .. 1.0] [0.9 .. 1.3]
    frame 1.6 arrives -> second window, centres (0.5, 0.8, 1.1, 1.4): three segments shared

With step 0 (TDN's rule), when the frame rate is far from the ~25-30 fps TDN was trained at
(see ``docs/pipeline.md``): at 5 fps the L frames of a segment span 0.8 s instead of 0.16 s, so
the short-term motion the model sees is 5x coarser; at 60 fps a segment spans only 67 ms. A
model trained with a step (the demo model: 0.1 s) sees the same span at every rate above
1 / step. Below 1 / spacing fps neighbouring centres pick the same nearest frame, so segments
repeat (duplicated frames). Nothing is resampled: the model sees the frames that were captured.
The segment rule lives in :mod:`tdn.sampling`, which training uses too (``train.time_grid``):
the bundled demo model is trained on these windows at 8-30 fps.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

from pipelines.types import Frame, Window
from tdn.sampling import NEIGHBOURS, first_centre, nearest_index, reaches_back, segment_indices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPlan:
    """What :meth:`WindowScheduler.plan` decided, as indices into the times it was given.

    centres: T grid times (ascending). indices: T tuples of L frame indices (time order).
    skipped: complete windows passed over because a newer one was already complete
    (the caller polled late: latest wins).
    """

    centres: tuple[float, ...]
    indices: tuple[tuple[int, ...], ...]
    skipped: int


class WindowScheduler:
    """Per-stream scheduler state (grid anchor, last emitted centre) over ascending capture times.

    ``plan(times)`` works on timestamps only (table-tested); ``next_window(stream, frames)`` is the
    same on frames from a :class:`~pipelines.buffer.FrameBuffer` snapshot and returns a
    :class:`~pipelines.types.Window`. Call either whenever new frames may have arrived: it
    returns None until a new centre completes.
    """

    def __init__(self, *, num_segments: int, window_seconds: float, max_gap_s: float = 1.0,
                 neighbours: int = NEIGHBOURS, segment_step_s: float = 0.0):
        if num_segments < 1:
            raise ValueError(f"num_segments must be >= 1, got {num_segments}")
        if window_seconds <= 0 or max_gap_s <= 0:
            raise ValueError(f"window_seconds and max_gap_s must be > 0, got {window_seconds} and {max_gap_s}")
        if not 0 <= segment_step_s <= 1:  # as train.segment_step_s and the model file allow
            raise ValueError(f"segment_step_s must be in [0, 1] s, got {segment_step_s}")
        self.num_segments = num_segments
        self.window_seconds = window_seconds
        self.spacing = window_seconds / num_segments
        self.max_gap_s = max_gap_s
        self.neighbours = neighbours
        self.segment_step_s = segment_step_s
        self.anchor: float | None = None  # grid time of centre 0
        self.last_k: int | None = None  # grid number of the newest centre of the last window
        self.skipped = 0  # windows passed over in total (latest wins)
        self.restarts = 0  # grid restarts after gaps
        self._newest_seen: float | None = None  # newest time of the previous plan() call
        self._warned_short_buffer = False

    def reset(self) -> None:
        """Forget the grid; the next window needs T fresh centres."""
        self.anchor, self.last_k = None, None

    def centre(self, k: int) -> float:
        """Time of grid centre ``k`` (computed the same way every time, so it is a stable cache key)."""
        return self.anchor + k * self.spacing

    def plan(self, times: Sequence[float]) -> WindowPlan | None:
        """The next window over ascending capture ``times`` (e.g. a buffer snapshot), or None."""
        if not times:
            return None
        previous, self._newest_seen = self._newest_seen, times[-1]
        if not self._anchor_grid(times, previous):
            return None
        k = math.floor((times[-1] - self.anchor) / self.spacing)
        while k >= 0 and self._segment(times, self.centre(k)) is None:
            k -= 1
        first_new = self.num_segments - 1 if self.last_k is None else max(self.last_k + 1, self.num_segments - 1)
        if k < first_new:
            return None
        centres = tuple(self.centre(j) for j in range(k - self.num_segments + 1, k + 1))
        if not reaches_back(times, nearest_index(times, centres[0]), self.neighbours, self.segment_step_s):
            self._warn_short_buffer(times)  # the buffer no longer reaches back that far
            return None
        indices = tuple(self._segment(times, c) for c in centres)
        skipped = k - first_new
        self.skipped += skipped
        self.last_k = k
        return WindowPlan(centres=centres, indices=indices, skipped=skipped)

    def _segment(self, times: Sequence[float], centre: float) -> tuple[int, ...] | None:
        return segment_indices(times, centre, self.neighbours, self.segment_step_s)

    def next_window(self, stream: str, frames: Sequence[Frame]) -> Window | None:
        """:meth:`plan` over ``frames`` (ascending ``t``), as a :class:`Window` of those frames."""
        plan = self.plan([f.t for f in frames])
        if plan is None:
            return None
        segments = tuple(tuple(frames[i] for i in idx) for idx in plan.indices)
        newest_t = frames[plan.indices[-1][-1]].t
        return Window(stream=stream, centres=plan.centres, frames=segments, newest_t=newest_t)

    def _anchor_grid(self, times: Sequence[float], previous: float | None) -> bool:
        """Restart the grid after a gap later than the anchor; anchor it if needed. ``previous``:
        the newest time seen before ``times`` (a gap before ``times[0]`` counts). False: not anchored yet."""
        gap_ends = [i for i in range(1, len(times)) if times[i] - times[i - 1] > self.max_gap_s]
        if previous is not None and times[0] - previous > self.max_gap_s:
            gap_ends.insert(0, 0)  # the frames before this gap have left the buffer
        if self.anchor is not None and gap_ends and times[gap_ends[-1]] > self.anchor:
            self.reset()
            self.restarts += 1
        if self.anchor is None:
            first = first_centre(times, gap_ends[-1] if gap_ends else 0, self.neighbours, self.segment_step_s)
            if first is None:
                return False
            self.anchor = times[first]
        return True

    def _warn_short_buffer(self, times: Sequence[float]) -> None:
        if not self._warned_short_buffer:
            log.warning("the frame buffer holds %.2f s but a window spans %.2f s: no windows until it holds more "
                        "(raise pipeline.buffer_max_frames or buffer_seconds)", times[-1] - times[0],
                        self.window_seconds)
            self._warned_short_buffer = True
