"""The clip tab's pure parts: the timeline SVG (bands, score lines, playhead), the verdict text
and the progress bar's time-left estimate."""
from __future__ import annotations

import re

import numpy as np
import torch

from app.tabs.clip import ProgressWithEta, verdict_markdown
from app.timeline import LEFT, RIGHT, WIDTH, class_colour, timeline_svg
from pipelines.clip import ClipPrediction, ClipWindow
from pipelines.segments import Segment

LABELS = ["moving left", "moving right", "still"]
TWO_PART = [Segment("moving right", 0.0, 4.0, 0.95, 9), Segment("moving left", 4.0, 8.0, 0.9, 8)]


def test_timeline_draws_a_band_per_segment_in_its_class_colour_and_a_line_per_top_class():
    times = [2.0 + 0.5 * i for i in range(13)]
    probs = np.array([[0.05, 0.9, 0.05] if t < 5 else [0.9, 0.05, 0.05] for t in times], np.float32)
    svg = timeline_svg(TWO_PART, times, probs, LABELS, duration_s=8.0, classes=2)
    bands = re.findall(r'<g class="tdn-segment" data-label="([^"]+)" data-start="([\d.]+)" data-end="([\d.]+)">'
                       r'<title>[^<]*</title><rect x="([\d.]+)" y="\d+" width="([\d.]+)"[^>]* fill="([^"]+)"', svg)
    assert [(b[0], float(b[1]), float(b[2])) for b in bands] == [("moving right", 0.0, 4.0), ("moving left", 4.0, 8.0)]
    half = (WIDTH - LEFT - RIGHT) / 2
    assert float(bands[0][3]) == LEFT and float(bands[0][4]) == half and float(bands[1][3]) == LEFT + half
    assert bands[0][5] == class_colour(1) and bands[1][5] == class_colour(0)
    lines = re.findall(r'<polyline class="tdn-score" data-label="([^"]+)" points="([^"]+)"', svg)
    assert {name for name, _ in lines} == {"moving left", "moving right"}  # the 2 classes that score highest
    assert all(len(points.split()) == 13 for _, points in lines)
    assert 'data-duration="8.000"' in svg and 'class="tdn-playhead"' in svg
    assert ">moving right 0.95<" in svg  # a wide band is labelled with its name and mean score


def test_timeline_marks_uncertain_stretches_grey_and_escapes_names():
    segments = [Segment(None, 0.0, 2.0, 0.4, 3), Segment("<b>", 2.0, 4.0, 0.8, 4)]
    probs = np.array([[0.4, 0.3, 0.3], [0.1, 0.8, 0.1]], np.float32)
    svg = timeline_svg(segments, [2.0, 4.0], probs, ["x", "<b>", "y"], duration_s=4.0)
    assert 'data-label="uncertain"' in svg and "#b0b0b0" in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "no timeline" in timeline_svg([], [], None, LABELS, duration_s=1.0)


def test_verdict_names_the_segments_first_and_explains_the_protocol_score():
    windows = [ClipWindow(time=2.0 + 0.25 * i, logits=torch.zeros(3)) for i in range(25)]
    result = ClipPrediction(source="c.mp4", scores=np.array([0.1, 0.2, 0.7], np.float32), views="1x1", frames=200,
                            fps=25.0, windows=windows)
    text = verdict_markdown(result, TWO_PART, LABELS, threshold=0.5, window_seconds=2.0, num_segments=8)
    first, *rest = text.split("\n\n")
    assert first == "### moving right 0-4 s, then moving left 4-8 s"
    assert "25 sliding windows of 2 s" in rest[0] and "moving left 4-8 s (mean score 0.90)" in rest[0]
    assert rest[1].startswith("Whole clip, TDN test protocol (1x1 views): still 0.70. *Why it can differ:*")
    assert "8 segments over all 8 s" in rest[1] and "8 s, 200 frames at 25.0 fps." in rest[2]


def test_progress_estimates_the_time_left_from_the_pace_so_far():
    shown, now = [], [100.0]
    progress = ProgressWithEta(lambda done, desc: shown.append((done, desc)), clock=lambda: now[0])
    progress(0.0, "opening")
    now[0] = 102.0
    progress(0.25, "scoring windows")  # 2 s for a quarter: 6 s to go
    now[0] = 108.0
    progress(1.0, "done")
    assert shown == [(0.0, "opening"), (0.25, "scoring windows · about 6 s left"), (1.0, "done")]
