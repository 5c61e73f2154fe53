"""What happens over a clip: its sliding windows' labels cut into segments, and the headline.

Each window's claimed label comes from :class:`pipelines.postprocess.PostProcessor` (the live
path's smoothing and threshold; ``None`` where nothing reaches the threshold: "uncertain").
A window stands for the moment at the middle of its span (its newest frame time minus half
the window); the clip's time is split at the midpoints between those moments, the first
segment starting at 0 and the last ending at the clip's end. Consecutive windows with the same
label form a run; a run shorter than ``min_seconds`` (a noisy window or two) is merged into its
longer neighbour, shortest first, so one flicker does not split a segment.

Worked example (windows every 1 s, ``window_seconds=2``, 8 s clip, ``min_seconds=1.5``)::

    newest frame time   2    3    4    5    6    7    8
    moment (t - 1)      1    2    3    4    5    6    7
    claimed             R    R    L    R    L    L    L     (R: moving right, L: moving left)
    runs                R 0-2.5 | L 2.5-3.5 | R 3.5-4.5 | L 4.5-8
    merged              R 0-4.5 (the 1 s L run joins the longer R side, then R runs join) | L 4.5-8
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from pipelines.postprocess import PostProcessor, top_indices

UNCERTAIN = "uncertain"  # how a segment with no claimed label reads in text
MIN_SEGMENT_S = 1.0  # runs shorter than this are merged into a neighbour
ALIASING_RATIO = 2.0  # a clip this many times longer than a window gets the aliasing note


@dataclass(frozen=True)
class Segment:
    """``label``: the claimed class, None where nothing reached the threshold (uncertain);
    ``score``: the mean over its windows of the smoothed probability of ``label`` (of the
    top class when uncertain); ``windows``: how many windows it covers."""

    label: str | None
    start_s: float
    end_s: float
    score: float
    windows: int

    def to_json(self) -> dict:
        return {"label": self.label, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "score": round(self.score, 6)}


def label_segments(times: Sequence[float], logits: Sequence[torch.Tensor], labels: list[str] | None, *,
                   duration_s: float, window_seconds: float, threshold: float, smoothing: int = 3,
                   min_seconds: float = MIN_SEGMENT_S) -> list[Segment]:
    """Segments of a clip from its windows (newest frame ``times`` in s, ``logits`` ``(K,)`` each,
    in time order); see the module docstring. No windows: no segments."""
    if len(times) != len(logits):
        raise ValueError(f"got {len(times)} window times but {len(logits)} logits")
    if not times:
        return []
    post = PostProcessor(labels, smoothing=smoothing, threshold=threshold, topk=1)
    predictions = [post.update(x) for x in logits]
    claimed = [p.label for p in predictions]
    scores = np.stack([p.scores for p in predictions])  # (W, K) smoothed probabilities
    class_of = {p.label: int(top_indices(p.scores, 1)[0]) for p in predictions if p.label is not None}
    moments = np.asarray(times, np.float64) - window_seconds / 2
    edges = np.concatenate([[0.0], (moments[1:] + moments[:-1]) / 2, [max(duration_s, float(times[-1]))]])
    runs = []  # [label, first window, last window + 1]
    for i, label in enumerate(claimed):
        if runs and runs[-1][0] == label:
            runs[-1][2] = i + 1
        else:
            runs.append([label, i, i + 1])

    def length(run: list) -> float:
        return edges[run[2]] - edges[run[1]]

    while len(runs) > 1:
        shortest = min(range(len(runs)), key=lambda r: length(runs[r]))
        if length(runs[shortest]) >= min_seconds:
            break
        neighbours = [r for r in (shortest - 1, shortest + 1) if 0 <= r < len(runs)]
        into = max(neighbours, key=lambda r: length(runs[r]))
        first, last = sorted((shortest, into))
        runs[first:last + 1] = [[runs[into][0], runs[first][1], runs[last][2]]]
        # the absorbing run may now touch a run of its own label: join them
        merged = [runs[0]]
        for run in runs[1:]:
            if run[0] == merged[-1][0]:
                merged[-1] = [run[0], merged[-1][1], run[2]]
            else:
                merged.append(run)
        runs = merged
    segments = []
    for label, first, last in runs:
        window_scores = scores[first:last]
        column = window_scores.max(axis=1) if label is None else window_scores[:, class_of[label]]
        segments.append(Segment(label=label, start_s=float(edges[first]), end_s=float(edges[last]),
                                score=float(column.mean()), windows=last - first))
    return segments


def format_seconds(seconds: float) -> str:
    """``4.0`` -> ``"4"``, ``2.25`` -> ``"2.2"``: one decimal at most."""
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


def headline(segments: Sequence[Segment]) -> str:
    """The segments as one sentence: ``"moving right 0-4 s, then moving left 4-8 s"``."""
    if not segments:
        return "no sliding window fits in the clip"
    return ", then ".join(f"{s.label or UNCERTAIN} {format_seconds(s.start_s)}-{format_seconds(s.end_s)} s"
                          for s in segments)


def protocol_note(segments: Sequence[Segment], protocol_label: str, *, duration_s: float, window_seconds: float,
                  num_segments: int) -> str | None:
    """Why the whole-clip protocol score may disagree with the segments, or None when it tells the same story:
    it names a label no segment has, or the segments change, or the clip is much longer than one window."""
    long_clip = duration_s > ALIASING_RATIO * window_seconds
    differs = len(segments) > 1 or any(s.label != protocol_label for s in segments)
    if not (long_clip or differs):
        return None
    spacing = duration_s / num_segments
    parts = [f"the whole-clip protocol spreads {num_segments} segments over all {format_seconds(duration_s)} s "
             f"(one every {format_seconds(spacing)} s) and averages them into one answer"]
    if long_clip:
        parts.append(f"the model saw {format_seconds(window_seconds)} s windows, so samples this far apart "
                     "can alias fast motion into another class")
    if len(segments) > 1:
        parts.append("it cannot say that the action changes")
    return "; ".join(parts) + ". The segments come from windows the model's own length, as the live view scores them."


def clip_segments(result, labels: list[str] | None, *, window_seconds: float, threshold: float, smoothing: int = 3,
                  min_seconds: float = MIN_SEGMENT_S) -> list[Segment]:
    """:func:`label_segments` of a :class:`pipelines.clip.ClipPrediction` scored ``per_window``."""
    windows = result.windows or []
    return label_segments([w.time for w in windows], [w.logits for w in windows], labels,
                          duration_s=result.frames / result.fps, window_seconds=window_seconds, threshold=threshold,
                          smoothing=smoothing, min_seconds=min_seconds)
