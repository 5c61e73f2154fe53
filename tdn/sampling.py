"""Which frames TDN sees: segments of L = 5 consecutive frames, for training and for the test protocol.

Each of the T segments is a span of L frames: the centre frame and ``NEIGHBOURS`` on each side.
Frames past the end repeat the last one. With ``n`` frames:

- training (TSN/TDN), ``avg = (n - L + 1) // T``: segment ``t`` starts at
  ``t * avg + randint(avg)`` (a random offset inside its share of the clip); when ``avg == 0``
  the starts are T sorted random frames (or all 0 for clips with ``n <= T`` frames);
- testing, ``tick = (n - L + 1) / T``: segment ``t`` of temporal clip ``c`` of ``C`` starts at
  ``int(tick * (t + (c + 1/2) / C))`` (the centre of its share for C = 1, TSN/TDN's test
  indices; the ``C`` clips together cover the video evenly); a clip with ``n <= T + L - 1``
  frames uses ``start_t = 0`` for all segments.

Worked example, ``n = 50, T = 8``: ``avg = 5``; training starts ``[0..4], [5..9], ...`` one per
share; test starts ``[2, 8, 14, 20, 25, 31, 37, 43]``.

**Time grid** (what the live scheduler, :mod:`pipelines.scheduler`, hands the model; the
demo model is trained and evaluated this way): capture times ``times`` (``k / fps`` for a file);
T centres ``c_0 + j * spacing`` with ``spacing = window_seconds / T``; each segment is the
captured frame nearest to its centre (the earlier one on a tie) and ``NEIGHBOURS`` frames on each
side (:func:`segment_indices`), chosen by the model's **segment step** ``step_s`` (stored with its
weights, ``ModelMeta.segment_step_s``): the ``k``-th neighbour is the captured frame nearest to
``centre_frame_time +- k * step_s``, and at least one frame beyond the ``(k-1)``-th, so neighbours
are never duplicates (they are different captures). With ``step_s = 0`` (TDN's own rule, and the
default) the neighbours are the adjacent captured frames: a segment's 5 frames span 0.4 s at
10 fps but 0.13 s at 30 fps. With ``step_s = 0.1`` (the demo model) they span about 0.4 s at every
rate from 10 fps up (adjacent frames below that), so the RGB differences the model sees do not
shrink as the camera's rate grows. ``c_0`` ranges from the earliest centre whose left neighbours
are captured (at least the third frame, the scheduler's anchor) to the latest one whose last
segment is complete; training draws it at random, testing takes the middle
(:func:`grid_window_indices`).

Test views (:data:`VIEWS`): ``"1x1"`` is one temporal clip, centre crop; ``"10x3"`` is 10
temporal clips x 3 spatial crops at the left, centre and right (top, centre, bottom for portrait
video) of the long side.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from typing import Sequence

import numpy as np

from tdn.transforms import CENTRE, THREE_CROPS

NEIGHBOURS = 2  # frames taken on each side of a segment's centre frame
SEGMENT_LENGTH = 2 * NEIGHBOURS + 1  # L: frames per segment, the centre at index L // 2
TIME_TOLERANCE_S = 1e-6  # frame times this close count as equal (float sums like 2.6 + 0.2)
VIEWS = {"1x1": (1, (CENTRE,)), "10x3": (10, THREE_CROPS)}  # name -> (temporal clips, crop positions)


def train_segment_starts(num_frames: int, num_segments: int, rng: np.random.Generator,
                         length: int = SEGMENT_LENGTH) -> list[int]:
    """First frame of each segment for training: a random offset inside each segment's share."""
    usable = num_frames - length + 1
    average = usable // num_segments
    if average > 0:
        return [t * average + int(rng.integers(average)) for t in range(num_segments)]
    if num_frames > num_segments:
        return sorted(int(i) for i in rng.integers(max(usable, 1), size=num_segments))
    return [0] * num_segments


def segment_starts(num_frames: int, num_segments: int, *, clip: int = 0, clips: int = 1,
                   length: int = SEGMENT_LENGTH) -> list[int]:
    """First frame of each segment of test clip ``clip`` of ``clips``; ``segment_starts(100, 4)`` ->
    ``[12, 36, 60, 84]`` (tick 24)."""
    if num_frames <= num_segments + length - 1:
        return [0] * num_segments
    tick = (num_frames - length + 1) / num_segments
    return [int(tick * (t + (clip + 0.5) / clips)) for t in range(num_segments)]


def frame_indices(starts: Sequence[int], num_frames: int, length: int = SEGMENT_LENGTH) -> list[int]:
    """The ``T * L`` frame indices of segments starting at ``starts`` (last frame repeated past the end)."""
    return [min(start + j, num_frames - 1) for start in starts for j in range(length)]


def clip_frame_indices(num_frames: int, num_segments: int, *, clip: int = 0, clips: int = 1,
                       length: int = SEGMENT_LENGTH, fps: float | None = None, step_s: float = 0.0) -> list[int]:
    """The ``T * L`` frame indices of one test clip, segment by segment. With a segment step
    ``step_s`` and the file's ``fps`` each segment's neighbours are chosen around its centre frame
    as on the time grid (:func:`neighbour_indices`, frame ``i`` at ``i / fps``), so the whole-clip
    protocol hands a model the same spans it was trained on."""
    if not step_s or not fps:
        return frame_indices(segment_starts(num_frames, num_segments, clip=clip, clips=clips, length=length),
                             num_frames, length)
    reach = max(NEIGHBOURS, math.ceil(NEIGHBOURS * step_s * fps - TIME_TOLERANCE_S))  # frames on each side
    starts = segment_starts(num_frames, num_segments, clip=clip, clips=clips, length=2 * reach + 1)
    times = np.arange(num_frames) / fps
    return [min(max(i, 0), num_frames - 1)
            for start in starts for i in neighbour_indices(times, start + reach, NEIGHBOURS, step_s)]


def temporal_clip_indices(num_frames: int, num_segments: int, clips: int, *, fps: float | None = None,
                          step_s: float = 0.0) -> list[list[int]]:
    """:func:`clip_frame_indices` of each of ``clips`` temporal clips."""
    return [clip_frame_indices(num_frames, num_segments, clip=c, clips=clips, fps=fps, step_s=step_s)
            for c in range(clips)]


def nearest_index(times: Sequence[float], t: float) -> int:
    """Index of the time in ascending ``times`` nearest to ``t``; the earlier one on a tie."""
    i = bisect_left(times, t)  # first time >= t
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t < t - times[i - 1] else i - 1


def neighbour_indices(times: Sequence[float], i: int, neighbours: int = NEIGHBOURS,
                      step_s: float = 0.0) -> list[int]:
    """The ``2 * neighbours + 1`` frame indices of the segment centred on frame ``i`` (see the module
    docstring): neighbour ``k`` is the frame nearest to ``times[i] +- k * step_s`` and at least one
    frame beyond neighbour ``k - 1``. Indices run past either end of ``times`` where frames are
    missing (callers clamp or wait)."""
    left, right = [i], [i]
    for k in range(1, neighbours + 1):
        left.append(min(nearest_index(times, times[i] - k * step_s), left[-1] - 1))
        right.append(max(nearest_index(times, times[i] + k * step_s), right[-1] + 1))
    return left[:0:-1] + right


def segment_complete(times: Sequence[float], i: int, neighbours: int = NEIGHBOURS, step_s: float = 0.0) -> bool:
    """True once the right neighbours of frame ``i`` can no longer change: ``neighbours`` frames
    follow it and one is at or after the last neighbour's target time."""
    return i + neighbours < len(times) and times[-1] >= times[i] + neighbours * step_s - TIME_TOLERANCE_S


def reaches_back(times: Sequence[float], i: int, neighbours: int = NEIGHBOURS, step_s: float = 0.0,
                 start: int = 0) -> bool:
    """True when ``times`` from ``times[start]`` on holds real left neighbours for frame ``i`` (none
    repeated or missing)."""
    return i - start >= neighbours and times[i] - neighbours * step_s >= times[start] - TIME_TOLERANCE_S


def first_centre(times: Sequence[float], start: int = 0, neighbours: int = NEIGHBOURS,
                 step_s: float = 0.0) -> int | None:
    """The first frame from ``times[start]`` on whose left neighbours are all captured at or after
    ``times[start]`` (:func:`reaches_back`); None if there is none yet."""
    return next((i for i in range(start + neighbours, len(times))
                 if reaches_back(times, i, neighbours, step_s, start)), None)


def last_centre(times: Sequence[float], neighbours: int = NEIGHBOURS, step_s: float = 0.0) -> int | None:
    """The last frame of ``times`` whose segment is complete (:func:`segment_complete`); None if none."""
    return next((i for i in range(len(times) - 1 - neighbours, -1, -1)
                 if segment_complete(times, i, neighbours, step_s)), None)


def segment_indices(times: Sequence[float], centre: float, neighbours: int = NEIGHBOURS,
                    step_s: float = 0.0) -> tuple[int, ...] | None:
    """The ``2 * neighbours + 1`` frame indices of the segment at ``centre`` (time), or None while
    it is incomplete (no frame at or after ``centre`` yet, or its right neighbours may still
    change: :func:`segment_complete`). Left neighbours missing at the start of ``times`` repeat
    the first frame."""
    if not times or times[-1] < centre:
        return None
    i = nearest_index(times, centre)
    if not segment_complete(times, i, neighbours, step_s):
        return None
    return tuple(max(0, j) for j in neighbour_indices(times, i, neighbours, step_s))


def grid_window_indices(times: Sequence[float], num_segments: int, window_seconds: float,
                        position: float = 0.5, step_s: float = 0.0) -> list[int]:
    """The ``T * L`` frame indices of one time-grid window over ascending capture ``times``, with
    neighbours ``step_s`` apart (:func:`neighbour_indices`).

    ``position`` in [0, 1] places the first centre between the earliest start (the third frame,
    or later while its left neighbours are not captured, as the scheduler anchors) and the latest
    one whose last segment is complete. A clip too short for a whole window starts at the
    earliest and repeats its first or last frame past the ends.
    """
    spacing = window_seconds / num_segments
    first, last = first_centre(times, 0, NEIGHBOURS, step_s), last_centre(times, NEIGHBOURS, step_s)
    earliest = times[first if first is not None else -1]
    latest = times[last if last is not None else 0] - spacing * (num_segments - 1)
    start = earliest + max(latest - earliest, 0.0) * position
    indices = []
    for j in range(num_segments):
        centre = nearest_index(times, start + j * spacing)
        indices += [min(max(i, 0), len(times) - 1) for i in neighbour_indices(times, centre, NEIGHBOURS, step_s)]
    return indices


def parse_views(views: str) -> tuple[int, tuple[float, ...]]:
    """``"1x1"`` or ``"10x3"`` -> (temporal clips, crop positions); ValueError otherwise."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(VIEWS)} (temporal clips x spatial crops), got {views!r}")
    return VIEWS[views]
