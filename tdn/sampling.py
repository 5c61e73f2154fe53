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

Test views (:data:`VIEWS`): ``"1x1"`` is one temporal clip, centre crop; ``"10x3"`` is 10
temporal clips x 3 spatial crops at the left, centre and right (top, centre, bottom for portrait
video) of the long side.
"""
from __future__ import annotations

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


def parse_views(views: str) -> tuple[int, tuple[float, ...]]:
    """``"1x1"`` or ``"10x3"`` -> (temporal clips, crop positions); ValueError otherwise."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(VIEWS)} (temporal clips x spatial crops), got {views!r}")
    return VIEWS[views]
