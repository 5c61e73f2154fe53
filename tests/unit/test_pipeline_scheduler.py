"""Window scheduler tables: regular, uneven, dropped, slow and fast frame rates, gaps, late polls."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from pipelines.scheduler import WindowScheduler, nearest_index, segment_indices
from pipelines.types import Frame
from tdn.sampling import first_centre, last_centre


def every(step: float, start: float, stop: float) -> list[float]:
    """start, start + step, ... up to stop (inclusive), rounded to kill float drift."""
    return [round(start + i * step, 6) for i in range(int(round((stop - start) / step)) + 1)]


def run(times, *, T, window, max_gap=1.0):
    """Feed ``times`` one frame at a time; each emission as (arrival, centres, segment frame times)."""
    scheduler = WindowScheduler(num_segments=T, window_seconds=window, max_gap_s=max_gap)
    out = []
    for n in range(1, len(times) + 1):
        plan = scheduler.plan(times[:n])
        if plan is not None:
            out.append((times[n - 1], [round(c, 6) for c in plan.centres],
                        [[times[i] for i in seg] for seg in plan.indices]))
    return out, scheduler


TEN_FPS = every(0.1, 0.0, 1.9)

# (case, times, T, window_seconds, expected emissions [(arrival, centres, segments)])
TABLE = [
    ("10 fps, the docstring's worked example", TEN_FPS, 4, 1.2, [
        (1.3, [0.2, 0.5, 0.8, 1.1],
         [[0.0, 0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6, 0.7], [0.6, 0.7, 0.8, 0.9, 1.0], [0.9, 1.0, 1.1, 1.2, 1.3]]),
        (1.6, [0.5, 0.8, 1.1, 1.4],
         [[0.3, 0.4, 0.5, 0.6, 0.7], [0.6, 0.7, 0.8, 0.9, 1.0], [0.9, 1.0, 1.1, 1.2, 1.3], [1.2, 1.3, 1.4, 1.5, 1.6]]),
        (1.9, [0.8, 1.1, 1.4, 1.7],
         [[0.6, 0.7, 0.8, 0.9, 1.0], [0.9, 1.0, 1.1, 1.2, 1.3], [1.2, 1.3, 1.4, 1.5, 1.6], [1.5, 1.6, 1.7, 1.8, 1.9]]),
    ]),
    ("dropped frames 0.5 and 0.6: nearest captured frame, neighbours skip the hole",
     [t for t in TEN_FPS if t not in (0.5, 0.6)][:14], 4, 1.2, [
        (1.3, [0.2, 0.5, 0.8, 1.1],
         [[0.0, 0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.7, 0.8], [0.4, 0.7, 0.8, 0.9, 1.0], [0.9, 1.0, 1.1, 1.2, 1.3]]),
    ]),
    ("uneven (jittered) arrival times",
     [0.0, 0.12, 0.19, 0.31, 0.42, 0.48, 0.61, 0.7, 0.83, 0.9, 1.02, 1.1, 1.21, 1.3, 1.42], 4, 1.2, [
        (1.3, [0.19, 0.49, 0.79, 1.09],
         [[0.0, 0.12, 0.19, 0.31, 0.42], [0.31, 0.42, 0.48, 0.61, 0.7], [0.61, 0.7, 0.83, 0.9, 1.02],
          [0.9, 1.02, 1.1, 1.21, 1.3]]),
    ]),
    ("4 fps: neighbours 0.25 s apart, a segment spans 1 s", every(0.25, 0.0, 2.5), 4, 2.0, [
        (2.5, [0.5, 1.0, 1.5, 2.0],
         [[0.0, 0.25, 0.5, 0.75, 1.0], [0.5, 0.75, 1.0, 1.25, 1.5], [1.0, 1.25, 1.5, 1.75, 2.0],
          [1.5, 1.75, 2.0, 2.25, 2.5]]),
    ]),
    ("2 fps, slower than the grid: centres share a nearest frame (tie -> earlier), segments repeat",
     every(0.5, 0.0, 3.0), 4, 1.0, [
        (2.5, [1.0, 1.25, 1.5, 1.75],
         [[0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 0.5, 1.0, 1.5, 2.0], [0.5, 1.0, 1.5, 2.0, 2.5], [0.5, 1.0, 1.5, 2.0, 2.5]]),
        # frame 3.0 completes two centres (2.0 and 2.25) at once: the window jumps by two
        (3.0, [1.5, 1.75, 2.0, 2.25],
         [[0.5, 1.0, 1.5, 2.0, 2.5], [0.5, 1.0, 1.5, 2.0, 2.5], [1.0, 1.5, 2.0, 2.5, 3.0], [1.0, 1.5, 2.0, 2.5, 3.0]]),
    ]),
    ("64 fps: adjacent frames 1/64 s apart, a segment spans 1/16 s", every(1 / 64, 0.0, 20 / 64), 2, 0.5, [
        (0.3125, [0.03125, 0.28125],
         [[0.0, 0.015625, 0.03125, 0.046875, 0.0625], [0.25, 0.265625, 0.28125, 0.296875, 0.3125]]),
    ]),
    ("a 7 s gap restarts the grid; no window mixes both sides",
     every(0.25, 0.0, 3.0) + every(0.25, 10.0, 13.0), 4, 2.0, [
        (2.5, [0.5, 1.0, 1.5, 2.0],
         [[0.0, 0.25, 0.5, 0.75, 1.0], [0.5, 0.75, 1.0, 1.25, 1.5], [1.0, 1.25, 1.5, 1.75, 2.0],
          [1.5, 1.75, 2.0, 2.25, 2.5]]),
        (3.0, [1.0, 1.5, 2.0, 2.5],
         [[0.5, 0.75, 1.0, 1.25, 1.5], [1.0, 1.25, 1.5, 1.75, 2.0], [1.5, 1.75, 2.0, 2.25, 2.5],
          [2.0, 2.25, 2.5, 2.75, 3.0]]),
        (12.5, [10.5, 11.0, 11.5, 12.0],
         [[10.0, 10.25, 10.5, 10.75, 11.0], [10.5, 10.75, 11.0, 11.25, 11.5], [11.0, 11.25, 11.5, 11.75, 12.0],
          [11.5, 11.75, 12.0, 12.25, 12.5]]),
        (13.0, [11.0, 11.5, 12.0, 12.5],
         [[10.5, 10.75, 11.0, 11.25, 11.5], [11.0, 11.25, 11.5, 11.75, 12.0], [11.5, 11.75, 12.0, 12.25, 12.5],
          [12.0, 12.25, 12.5, 12.75, 13.0]]),
    ]),
    ("one frame every 1.5 s (slower than max_gap 1 s): every frame restarts the grid, no windows",
     every(1.5, 0.0, 30.0), 4, 2.0, []),
    ("T = 1: one segment per window", every(0.1, 0.0, 0.6), 1, 0.2, [
        (0.4, [0.2], [[0.0, 0.1, 0.2, 0.3, 0.4]]),
        (0.6, [0.4], [[0.2, 0.3, 0.4, 0.5, 0.6]]),
    ]),
]


@pytest.mark.parametrize("case,times,T,window,expected", TABLE, ids=[row[0] for row in TABLE])
def test_schedule_table(case, times, T, window, expected):
    emitted, _ = run(times, T=T, window=window)
    assert len(emitted) == len(expected)
    for (arrival, centres, segments), (want_arrival, want_centres, want_segments) in zip(emitted, expected):
        assert arrival == pytest.approx(want_arrival)
        assert centres == pytest.approx(want_centres)
        assert segments == [pytest.approx(seg) for seg in want_segments]


def test_consecutive_windows_share_t_minus_1_identical_centres():
    s = WindowScheduler(num_segments=4, window_seconds=1.2)
    plans = [p for n in range(1, len(TEN_FPS) + 1) if (p := s.plan(TEN_FPS[:n])) is not None]
    assert len(plans) == 3
    for a, b in zip(plans, plans[1:]):
        assert a.centres[1:] == b.centres[:-1]  # the same floats: usable as cache keys


def test_gap_counts_a_restart():
    _, scheduler = run(every(0.25, 0.0, 3.0) + every(0.25, 10.0, 13.0), T=4, window=2.0)
    assert scheduler.restarts == 1 and scheduler.anchor == 10.5


def test_an_outage_longer_than_the_buffer_restarts_the_grid_and_drops_no_window():
    """25 fps, a 6 s buffer (150 frames), then 7 s without frames: by the first frame after the
    outage the buffer holds no frame from before it, yet the grid restarts and the windows that
    would have had centres in the outage are not counted as skipped (they never existed)."""
    scheduler = WindowScheduler(num_segments=8, window_seconds=1.28)
    times = every(0.04, 0.0, 10.0) + every(0.04, 17.0, 27.0)
    emitted = 0
    for n in range(1, len(times) + 1):
        buffered = [t for t in times[:n] if t >= times[n - 1] - 6.0]  # the buffer's age bound
        emitted += scheduler.plan(buffered) is not None
    assert scheduler.restarts == 1 and scheduler.anchor == pytest.approx(17.08)
    assert scheduler.skipped == 0
    assert emitted == 2 * (62 - 8 + 1)  # each side: centres 0.08, 0.24, .. 9.84 (62), T = 8 per window


def test_late_poll_emits_only_the_newest_window_and_counts_the_rest():
    scheduler = WindowScheduler(num_segments=4, window_seconds=1.2)
    plan = scheduler.plan(TEN_FPS)  # everything arrived before the first poll
    assert [round(c, 6) for c in plan.centres] == [0.8, 1.1, 1.4, 1.7]
    assert plan.skipped == 2 and scheduler.skipped == 2
    assert scheduler.plan(TEN_FPS) is None  # nothing new since


def test_buffer_shorter_than_the_window_gives_no_windows_and_warns(caplog):
    scheduler = WindowScheduler(num_segments=4, window_seconds=1.2)
    times = every(0.1, 0.0, 5.0)
    with caplog.at_level(logging.WARNING, logger="pipelines.scheduler"):
        plans = [scheduler.plan(times[max(0, n - 8):n]) for n in range(1, len(times) + 1)]  # 8-frame buffer
    assert plans == [None] * len(times)
    assert "buffer holds" in caplog.text and caplog.text.count("buffer holds") == 1


def test_next_window_builds_windows_of_the_buffered_frames():
    frames = [Frame(image=np.zeros((4, 4, 3), np.uint8), t=t, index=i) for i, t in enumerate(TEN_FPS[:14])]
    scheduler = WindowScheduler(num_segments=4, window_seconds=1.2)
    assert scheduler.next_window("cam", frames[:13]) is None
    window = scheduler.next_window("cam", frames)
    assert window.stream == "cam" and len(window.frames) == 4 and all(len(seg) == 5 for seg in window.frames)
    assert [seg[2].index for seg in window.frames] == [2, 5, 8, 11]  # centre frames at index L // 2
    assert window.frames[-1][-1] is frames[13] and window.newest_t == frames[13].t


@pytest.mark.parametrize("times,t,want", [
    ([0.0, 1.0, 2.0], -5.0, 0), ([0.0, 1.0, 2.0], 9.0, 2), ([0.0, 1.0, 2.0], 0.4, 0),
    ([0.0, 1.0, 2.0], 0.6, 1), ([0.0, 1.0, 2.0], 0.5, 0), ([0.0, 1.0, 2.0], 1.0, 1),
])
def test_nearest_index(times, t, want):
    assert nearest_index(times, t) == want


@pytest.mark.parametrize("times,centre,want", [
    ([0.0, 1.0, 2.0, 3.0], 3.5, None),  # no frame at or after the centre yet
    ([0.0, 1.0, 2.0, 3.0], 2.0, None),  # nearest frame lacks its 2 right neighbours
    ([0.0, 1.0, 2.0, 3.0, 4.0], 2.0, (0, 1, 2, 3, 4)),
    ([0.0, 1.0, 2.0, 3.0, 4.0], 0.5, (0, 0, 0, 1, 2)),  # left neighbours missing: the first frame repeats
])
def test_segment_indices(times, centre, want):
    assert segment_indices(times, centre) == want


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="num_segments"):
        WindowScheduler(num_segments=0, window_seconds=2.0)
    with pytest.raises(ValueError, match="window_seconds"):
        WindowScheduler(num_segments=8, window_seconds=0.0)


def test_with_a_segment_step_neighbours_are_step_apart_and_final_when_emitted():
    """Segment step 0.1 s at 30 fps: neighbours 3 frames (0.1 s) apart, a window is emitted once a
    frame 2 steps past its last centre's frame has arrived, and no later frame would have changed it."""
    times = every(1 / 30, 0.0, 3.0)
    scheduler = WindowScheduler(num_segments=4, window_seconds=1.2, segment_step_s=0.1)
    emitted = []
    for n in range(1, len(times) + 1):
        plan = scheduler.plan(times[:n])
        if plan is not None:
            emitted.append((n, plan))
    assert emitted
    for n, plan in emitted:
        for centre, segment in zip(plan.centres, plan.indices):
            assert np.allclose(np.diff([times[i] for i in segment]), 0.1, atol=1e-6), segment
            assert segment == segment_indices(times, centre, step_s=0.1)  # what all the frames give
        assert times[n - 1] >= times[plan.indices[-1][2]] + 0.2 - 1e-6  # waited for the last target
        assert times[n - 2] < times[plan.indices[-1][2]] + 0.2 - 1e-6  # and not a frame longer
    assert emitted[0][1].indices[0] == (0, 3, 6, 9, 12)  # anchored where the left neighbours exist


@pytest.mark.parametrize("times", [every(0.125, 0.0, 1.0), [0.0, 0.05, 0.3, 0.32, 0.6, 0.61, 0.9, 1.0]])
def test_a_segment_step_longer_than_the_frame_gaps_never_duplicates_a_frame(times):
    """Below 1 / step fps (8 fps here) or with uneven frames, neighbours are the next captures
    beyond each other, never the same frame twice."""
    first, last = first_centre(times, 0, 2, 0.2), last_centre(times, 2, 0.2)
    assert first is not None and last is not None and first <= last
    for centre in times[first:last + 1]:
        segment = segment_indices(times, centre, step_s=0.2)
        assert segment is not None and np.all(np.diff(segment) >= 1), (centre, segment)
