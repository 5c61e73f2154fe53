"""Segments of a clip from its sliding windows: runs of one claimed label, noise merged away,
"uncertain" where nothing reaches the threshold, the headline and the protocol note."""
from __future__ import annotations

import pytest
import torch

from pipelines.clip import ClipPrediction, ClipWindow
from pipelines.segments import Segment, clip_segments, headline, label_segments, protocol_note

LABELS = ["moving left", "moving right", "still"]
LEFT, RIGHT, STILL = range(3)


def logits(cls: int | None, strength: float = 6.0) -> torch.Tensor:
    """Logits whose softmax favours ``cls`` (about 0.995 at the default strength); None: all equal."""
    x = torch.zeros(3)
    if cls is not None:
        x[cls] = strength
    return x


def windows(classes, every: float = 0.25, first: float = 2.0):
    """Window times (newest frame, s) and logits for one class per window."""
    times = [first + i * every for i in range(len(classes))]
    return times, [logits(c) for c in classes]


def test_two_part_clip_gives_two_segments_split_where_the_motion_changes():
    # 16 s clip, windows of 2 s every 0.25 s: right until the window's middle passes 8 s, then left
    times = [2.0 + 0.25 * i for i in range(57)]  # newest frame 2 .. 16 s
    classes = [RIGHT if t - 1.0 < 8.0 else LEFT for t in times]
    segments = label_segments(times, [logits(c) for c in classes], LABELS, duration_s=16.0, window_seconds=2.0,
                              threshold=0.5, smoothing=1)
    assert [s.label for s in segments] == ["moving right", "moving left"]
    assert segments[0].start_s == 0.0 and segments[-1].end_s == 16.0
    assert segments[0].end_s == segments[1].start_s == pytest.approx(7.875)  # between moments 7.75 and 8.0
    assert all(s.score > 0.99 for s in segments)
    assert sum(s.windows for s in segments) == 57
    assert headline(segments) == "moving right 0-7.9 s, then moving left 7.9-16 s"


def test_a_noisy_window_does_not_split_a_segment():
    classes = [RIGHT] * 10 + [LEFT] + [RIGHT] * 10 + [STILL, STILL] + [RIGHT] * 10
    times, scores = windows(classes)
    segments = label_segments(times, scores, LABELS, duration_s=10.0, window_seconds=2.0, threshold=0.5,
                              smoothing=1)
    assert [(s.label, s.start_s, s.end_s) for s in segments] == [("moving right", 0.0, 10.0)]
    # the noisy windows pull the mean score of "moving right" down, but it stays the segment's
    assert 0.85 < segments[0].score < 0.95


def test_a_long_enough_change_is_kept_and_a_short_one_merges_into_the_longer_neighbour():
    classes = [RIGHT] * 12 + [LEFT] * 3 + [STILL] * 8  # LEFT lasts 0.75 s < 1 s: joins the longer side (RIGHT)
    times, scores = windows(classes)
    segments = label_segments(times, scores, LABELS, duration_s=8.0, window_seconds=2.0, threshold=0.5,
                              smoothing=1, min_seconds=1.0)
    assert [s.label for s in segments] == ["moving right", "still"]
    assert [s.windows for s in segments] == [15, 8]
    longer = label_segments(times, scores, LABELS, duration_s=8.0, window_seconds=2.0, threshold=0.5,
                            smoothing=1, min_seconds=0.5)
    assert [s.label for s in longer] == ["moving right", "moving left", "still"]


def test_windows_below_the_threshold_are_uncertain():
    classes = [RIGHT] * 8 + [None] * 8 + [RIGHT] * 8  # the middle windows score 1/3 each
    times, scores = windows(classes)
    segments = label_segments(times, scores, LABELS, duration_s=8.0, window_seconds=2.0, threshold=0.5,
                              smoothing=1)
    assert [s.label for s in segments] == ["moving right", None, "moving right"]
    assert segments[1].score == pytest.approx(1 / 3, abs=1e-5)  # the top class's mean score
    assert "uncertain" in headline(segments)
    # at threshold 0 everything is claimed: the flat windows go to the first class on the tie
    claimed = label_segments(times, scores, LABELS, duration_s=8.0, window_seconds=2.0, threshold=0.0, smoothing=1)
    assert None not in [s.label for s in claimed]


def test_smoothing_is_the_live_paths():
    # one window of LEFT between RIGHT ones: smoothed over 3 windows RIGHT still wins it
    times, scores = windows([RIGHT] * 4 + [LEFT] + [RIGHT] * 4)
    segments = label_segments(times, scores, LABELS, duration_s=5.0, window_seconds=2.0, threshold=0.5,
                              smoothing=3, min_seconds=0.0)
    assert [s.label for s in segments] == ["moving right"]


def test_segments_json_and_bad_input():
    segment = Segment(label=None, start_s=1.23456, end_s=2.0, score=0.5, windows=3)
    assert segment.to_json() == {"label": None, "start_s": 1.235, "end_s": 2.0, "score": 0.5}
    with pytest.raises(ValueError, match="2 window times but 1 logits"):
        label_segments([1.0, 2.0], [logits(LEFT)], LABELS, duration_s=2.0, window_seconds=1.0, threshold=0.0)
    assert label_segments([], [], LABELS, duration_s=1.0, window_seconds=2.0, threshold=0.0) == []
    assert headline([]) == "no sliding window fits in the clip"


def test_clip_segments_reads_a_clip_prediction():
    result = ClipPrediction(source="c.mp4", scores=torch.softmax(logits(LEFT), 0).numpy(), views="1x1",
                            frames=100, fps=25.0,
                            windows=[ClipWindow(time=1.0 + 0.25 * i, logits=logits(LEFT)) for i in range(13)])
    [segment] = clip_segments(result, LABELS, window_seconds=1.0, threshold=0.5)
    assert (segment.label, segment.start_s, segment.end_s) == ("moving left", 0.0, 4.0)


def test_protocol_note_says_why_the_whole_clip_score_differs():
    one = [Segment("moving right", 0.0, 3.0, 0.9, 5)]
    assert protocol_note(one, "moving right", duration_s=3.0, window_seconds=2.0, num_segments=8) is None
    differs = protocol_note(one, "still", duration_s=3.0, window_seconds=2.0, num_segments=8)
    assert differs is not None and "8 segments over all 3 s" in differs and "alias" not in differs
    two = [Segment("moving right", 0.0, 15.0, 0.9, 50), Segment("moving left", 15.0, 30.0, 0.9, 50)]
    note = protocol_note(two, "moving left", duration_s=30.0, window_seconds=2.0, num_segments=8)
    assert "one every 3.8 s" in note and "alias" in note and "changes" in note
