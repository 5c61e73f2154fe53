"""Pure functions that turn pipeline results into what the UI shows: annotated frames, status
lines, clip scores (the clip timeline is :mod:`app.timeline`, the annotated clip video
:mod:`app.clip_video`). Drawing itself is :mod:`pipelines.overlay`'s, scores to labels
:mod:`pipelines.postprocess`'s; nothing here runs the model.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from app.timeline import timeline_svg
from pipelines.clip import ClipPrediction
from pipelines.events import PredictionEvent, StatsEvent
from pipelines.overlay import HEATMAP_OPACITY, annotate, heatmap_colours
from pipelines.postprocess import claimed_label, probabilities, top_labels
from pipelines.segments import Segment
from pipelines.types import FINAL_STATES
from tdn.transforms import PreprocessSpec

HEATMAP_CHOICES = [("off", "none"), ("RGB differences", "rgb"), ("S-TDM response", "stdm")]
DISPLAY_MIN_WIDTH = 480  # smaller frames are enlarged before overlays are drawn
# a stream's state as a chip: the source states, with "ended" shown as "stopped"
CHIP_COLOURS = {"connecting": "#b7791f", "live": "#2f855a", "reconnecting": "#c05621", "failed": "#c53030",
                "stopped": "#718096"}
STALE_DIMMING = 0.45  # brightness kept by a stopped or lost stream's last frame (greyed, then dimmed)


def for_display(frame: np.ndarray, min_width: int = DISPLAY_MIN_WIDTH) -> np.ndarray:
    """``frame`` enlarged to at least ``min_width`` pixels wide, so overlay text stays legible."""
    h, w = frame.shape[:2]
    if w >= min_width:
        return frame
    scale = min_width / w
    return cv2.resize(frame, (min_width, max(2, int(round(h * scale / 2)) * 2)), interpolation=cv2.INTER_LINEAR)


def annotate_latest(frame: np.ndarray, latest: PredictionEvent | None, spec: PreprocessSpec, *,
                    heatmap: str, waiting: str, opacity: float = HEATMAP_OPACITY) -> np.ndarray:
    """``frame`` (enlarged by :func:`for_display`) with the stream's newest heat map on it, or
    ``waiting`` before its first prediction. The labels go beside the frame (:func:`label_scores`),
    not over it. The map comes from the newest segment the model saw (its frames for ``"rgb"``,
    its S-TDM response for ``"stdm"``)."""
    shown = for_display(frame)
    if latest is None:
        return annotate(shown, [], title=waiting)
    segment = [f.image for f in latest.window.frames[-1]]
    if segment and segment[0].shape != frame.shape:
        segment = None  # the stream changed size since that window: no map rather than a wrong one
    response = latest.response.detach().float().cpu().numpy() if latest.response is not None else None
    return annotate(shown, (), heatmap=heatmap, segment=segment, response=response, spec=spec, opacity=opacity,
                    panel=False)


def label_scores(latest: PredictionEvent | None) -> dict[str, float] | None:
    """The newest prediction's top-k ``{full class name: score}`` for the label panel beside a live view."""
    return None if latest is None else dict(latest.prediction.topk)


def label_title(latest: PredictionEvent | None, threshold: float, down: str | None = None) -> str:
    """The label panel's title: the claimed class, or that nothing reaches ``threshold`` (uncertain);
    with no prediction, why: ``down`` (the stream is stopped, failed, reconnecting ...) or not yet one."""
    if latest is None:
        return f"no prediction: {down}" if down else "waiting for the first prediction"
    claimed = claimed_label(latest.prediction.topk, threshold)
    return claimed if claimed is not None else f"uncertain: no class reaches {threshold:.2f}"


def heatmap_legend_html() -> str:
    """A colour bar for the heat maps (the colours :func:`pipelines.overlay.blend_heatmap` uses), cold to hot."""
    stops = ", ".join(f"rgb{colour}" for colour in heatmap_colours())
    return ('<div class="heat-legend"><span>no change</span>'
            f'<div class="heat-legend-bar" style="background: linear-gradient(to right, {stops})"></div>'
            '<span>most change</span></div>')


def stale_view(frame: np.ndarray, note: str) -> np.ndarray:
    """The last frame of a stream that is stopped or down: grey, dimmed and titled ``note``, so it
    cannot pass for a live picture (no label, no heat map)."""
    shown = for_display(frame)
    grey = cv2.cvtColor(cv2.cvtColor(shown, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return annotate((grey * STALE_DIMMING).astype(np.uint8), [], title=note)


def chip_state(state: str) -> str:
    """The chip a source state shows as: the state itself, ``"ended"`` as ``"stopped"``."""
    return "stopped" if state == "ended" else state


def status_chip(state: str) -> str:
    """A coloured pill naming a stream's state (HTML, for Markdown and HTML components):
    connecting, live, reconnecting, failed or stopped (a source's ``"ended"`` included)."""
    shown = chip_state(state)
    if shown not in CHIP_COLOURS:
        raise ValueError(f"no chip for state {state!r}; states: {', '.join(CHIP_COLOURS)}, ended")
    return (f'<span class="status-chip status-chip-{shown}" style="background:{CHIP_COLOURS[shown]};color:#fff;'
            f'border-radius:999px;padding:1px 10px;font-weight:600;white-space:nowrap">● {shown}</span>')


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def outage_line(stats: StatsEvent) -> str:
    """What outages a stream had ("" for none): how many, seconds without frames, the current one."""
    if not stats.outages:
        return ""
    current = "" if stats.current_outage_s is None else f" · down for {stats.current_outage_s:.1f} s now"
    plural = "" if stats.outages == 1 else "s"
    return f"{stats.outages} outage{plural}, {stats.outage_s:.1f} s without frames{current}"


def stream_summary(stats: StatsEvent | None, latest: PredictionEvent | None, threshold: float) -> str:
    """One Markdown block: the state chip and detail; while live the label, fps, prediction rate,
    latency and dropped windows; otherwise none of those (they would be stale); outages if any.
    ``stats`` None: the stream is closed (stopped)."""
    if stats is None:
        return f"{status_chip('stopped')} stream closed"
    lines = [f"{status_chip(stats.state)} {stats.detail}"]
    if stats.state == "live":
        if latest is not None:
            label = claimed_label(latest.prediction.topk, threshold)
            lines.insert(0, f"**{label}**" if label else "*nothing above threshold*")
        else:
            lines.insert(0, "*waiting for the first window*")
        lines.append(f"{stats.fps:.1f} fps · {stats.prediction_rate:.1f} predictions/s · "
                     f"latency p50 {_fmt_ms(stats.latency_ms_p50)} p95 {_fmt_ms(stats.latency_ms_p95)} · "
                     f"dropped windows {stats.dropped_windows}")
    elif stats.state not in FINAL_STATES and stats.frames_read:
        lines.insert(0, "*no label while the stream is down*")
    if outages := outage_line(stats):
        lines.append(outages)
    return "  \n".join(lines)


def topk_scores(scores: np.ndarray, labels: list[str] | None, k: int) -> dict[str, float]:
    """``{label: score}`` of the ``k`` best classes (for ``gr.Label``)."""
    return dict(top_labels(scores, labels, k))


def window_probabilities(result: ClipPrediction) -> np.ndarray:
    """Softmax of each sliding window's logits: float32 ``(W, K)``."""
    return probabilities(torch.stack([w.logits for w in result.windows]))  # W x (K,) -> (W, K)


def clip_timeline(result: ClipPrediction, segments: list[Segment], labels: list[str] | None,
                  window_seconds: float) -> str:
    """The clip tab's timeline (:func:`app.timeline.timeline_svg`) of a per-window result, each window's
    scores at its middle, as :func:`pipelines.segments.clip_segments` places them."""
    probs = window_probabilities(result) if result.windows else None
    middles = [w.time - window_seconds / 2 for w in result.windows or []]
    return timeline_svg(segments, middles, probs, labels, result.frames / result.fps)
