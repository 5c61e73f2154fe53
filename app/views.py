"""Pure functions that turn pipeline results into what the UI shows: annotated frames, status
lines, the clip timeline and the annotated clip video. Drawing itself is
:mod:`pipelines.overlay`'s, scores to labels :mod:`pipelines.postprocess`'s; nothing here runs
the model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from pipelines.clip import ClipPrediction
from pipelines.events import PredictionEvent, StatsEvent
from pipelines.overlay import HEATMAP_OPACITY, annotate, heatmap_colours
from pipelines.postprocess import claimed_label, probabilities, top_indices, top_labels
from pipelines.types import FINAL_STATES
from tdn.labels import label_name
from tdn.sampling import SEGMENT_LENGTH
from tdn.video import open_video, open_writer
from tdn.transforms import PreprocessSpec

HEATMAP_CHOICES = [("off", "none"), ("RGB differences", "rgb"), ("S-TDM response", "stdm")]
TIMELINE_CLASSES = 5  # classes drawn in the clip timeline
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


def label_title(latest: PredictionEvent | None, threshold: float) -> str:
    """The label panel's title: the claimed class, or that nothing reaches ``threshold`` (uncertain)."""
    if latest is None:
        return "waiting for the first prediction"
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


def timeline_rows(result: ClipPrediction, labels: list[str] | None, classes: int = TIMELINE_CLASSES) -> list[dict]:
    """``[{"time", "score", "label"}]`` for the ``classes`` classes that score highest in any window."""
    if not result.windows:
        return []
    probs = window_probabilities(result)
    top = top_indices(probs.max(axis=0), classes)
    return [{"time": round(w.time, 3), "score": float(probs[i, c]), "label": label_name(labels, int(c))}
            for c in top for i, w in enumerate(result.windows)]


def render_clip_video(path: str | Path, result: ClipPrediction, labels: list[str] | None, out_path: str | Path, *,
                      threshold: float, heatmap: str, k: int, spec: PreprocessSpec | None = None,
                      max_side: int = 480, progress: Callable[[float], None] | None = None) -> Path:
    """Write ``path`` again as a VP8 WebM (plays in every browser) with, on each frame, the
    prediction of the newest sliding window that ended at or before it, and the clip-level
    prediction as the title. The ``"rgb"`` heat map uses the frame's last L frames; ``"stdm"``
    that window's S-TDM response placed over ``spec``'s centre crop. ``progress`` gets the
    fraction of frames written, every 25 frames."""
    windows = result.windows or []
    probs = window_probabilities(result) if windows else np.zeros((0, 0), np.float32)
    [(clip_label, clip_score)] = top_labels(result.scores, labels, 1)
    title = f"clip: {clip_label} {clip_score:.2f}"
    try:
        capture = open_video(path)
    except (ValueError, OSError):
        raise ValueError(f"cannot read {Path(path).name} to draw the annotated video") from None
    out_path = Path(out_path)
    writer = None
    recent: list[np.ndarray] = []
    index, current = 0, -1
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            if scale < 1.0:
                bgr = cv2.resize(bgr, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2), interpolation=cv2.INTER_AREA)
            frame = for_display(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            recent = (recent + [frame])[-SEGMENT_LENGTH:]
            t = index / result.fps
            while current + 1 < len(windows) and windows[current + 1].time <= t + 1e-6:
                current += 1
            topk = () if current < 0 else top_labels(probs[current], labels, k)
            response = None if current < 0 or windows[current].response is None \
                else windows[current].response.astype(np.float32)
            shown = annotate(frame, topk, threshold=threshold, heatmap=heatmap, segment=recent, response=response,
                             spec=spec, title=title)
            if writer is None:
                writer = open_writer(out_path, "VP80", result.fps, (shown.shape[1], shown.shape[0]))
            writer.write(cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
            index += 1
            if progress is not None and index % 25 == 0:
                progress(min(1.0, index / max(1, result.frames)))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"{Path(path).name} has no readable frames")
    return out_path
