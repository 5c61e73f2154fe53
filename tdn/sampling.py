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
captured frame nearest to its centre (the earlier one on a tie) and its ``NEIGHBOURS`` captured
frames on each side (:func:`segment_indices`). So at 10 fps a segment's 5 frames span 0.4 s,
at 30 fps 0.13 s, and neighbouring frames are never duplicates of each other (they are different
captures). ``c_0`` ranges from the third frame (the scheduler's anchor) to the latest start
whose last segment is complete; training draws it at random, testing takes the middle
(:func:`grid_window_indices`).

Test views (:data:`VIEWS`): ``"1x1"`` is one temporal clip, centre crop; ``"10x3"`` is 10
temporal clips x 3 spatial crops at the left, centre and right (top, centre, bottom for portrait
video) of the long side.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Sequence

import numpy as np

from tdn.transforms import CENTRE, THREE_CROPS

NEIGHBOURS = 2  # frames taken on each side of a segment's centre frame
SEGMENT_LENGTH = 2 * NEIGHBOURS + 1  # L: frames per segment, the centre at index L // 2
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
                       length: int = SEGMENT_LENGTH) -> list[int]:
    """The ``T * L`` frame indices of one test clip, segment by segment."""
    return frame_indices(segment_starts(num_frames, num_segments, clip=clip, clips=clips, length=length),
                         num_frames, length)


def temporal_clip_indices(num_frames: int, num_segments: int, clips: int) -> list[list[int]]:
    """:func:`clip_frame_indices` of each of ``clips`` temporal clips."""
    return [clip_frame_indices(num_frames, num_segments, clip=c, clips=clips) for c in range(clips)]


def nearest_index(times: Sequence[float], t: float) -> int:
    """Index of the time in ascending ``times`` nearest to ``t``; the earlier one on a tie."""
    i = bisect_left(times, t)  # first time >= t
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t < t - times[i - 1] else i - 1


def segment_indices(times: Sequence[float], centre: float, neighbours: int = NEIGHBOURS) -> tuple[int, ...] | None:
    """The ``2 * neighbours + 1`` frame indices of the segment at ``centre``, or None while it is
    incomplete (no frame at or after ``centre`` yet, or fewer than ``neighbours`` frames after the
    nearest one). Left neighbours missing at the start of ``times`` repeat the first frame."""
    if not times or times[-1] < centre:
        return None
    i = nearest_index(times, centre)
    if i + neighbours >= len(times):
        return None
    return tuple(max(0, j) for j in range(i - neighbours, i + neighbours + 1))


def grid_window_indices(times: Sequence[float], num_segments: int, window_seconds: float,
                        position: float = 0.5) -> list[int]:
    """The ``T * L`` frame indices of one time-grid window over ascending capture ``times``.

    ``position`` in [0, 1] places the first centre between the earliest start (the third frame,
    as the scheduler anchors) and the latest one whose last segment is complete. A clip too short
    for a whole window starts at the earliest and repeats its last frame past the end.
    """
    spacing = window_seconds / num_segments
    earliest = times[min(NEIGHBOURS, len(times) - 1)]
    latest = times[max(len(times) - 1 - NEIGHBOURS, 0)] - spacing * (num_segments - 1)
    first = earliest + max(latest - earliest, 0.0) * position
    indices = []
    for j in range(num_segments):
        centre = nearest_index(times, first + j * spacing)
        indices += [min(max(i, 0), len(times) - 1) for i in range(centre - NEIGHBOURS, centre + NEIGHBOURS + 1)]
    return indices


def parse_views(views: str) -> tuple[int, tuple[float, ...]]:
    """``"1x1"`` or ``"10x3"`` -> (temporal clips, crop positions); ValueError otherwise."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(VIEWS)} (temporal clips x spatial crops), got {views!r}")
    return VIEWS[views]
