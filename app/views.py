"""Pure functions that turn pipeline results into what the UI shows: annotated frames, status
lines, clip scores (the clip timeline is :mod:`app.timeline`, the annotated clip video
:mod:`app.clip_video`). Drawing itself is :mod:`pipelines.overlay`'s, scores to labels
:mod:`pipelines.postprocess`'s; nothing here runs the model.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from pipelines.clip import ClipPrediction
from pipelines.events import PredictionEvent, StatsEvent
from pipelines.overlay import annotate
from pipelines.postprocess import claimed_label, probabilities, top_labels
from pipelines.types import FINAL_STATES
from tdn.transforms import PreprocessSpec

HEATMAP_CHOICES = [("off", "none"), ("RGB differences", "rgb"), ("S-TDM response", "stdm")]
DISPLAY_MIN_WIDTH = 480  # smaller frames are enlarged before overlays are drawn


def camera_view(image: np.ndarray, *, mirrored: bool) -> np.ndarray:
    """The frame as the camera captured it. Gradio's webcam (``webcam_options.mirror=True``)
    draws each frame flipped left-right before sending it, so a mirrored frame is flipped back."""
    return np.ascontiguousarray(image[:, ::-1]) if mirrored else image


def for_display(frame: np.ndarray, min_width: int = DISPLAY_MIN_WIDTH) -> np.ndarray:
    """``frame`` enlarged to at least ``min_width`` pixels wide, so overlay text stays legible."""
    h, w = frame.shape[:2]
    if w >= min_width:
        return frame
    scale = min_width / w
    return cv2.resize(frame, (min_width, max(2, int(round(h * scale / 2)) * 2)), interpolation=cv2.INTER_LINEAR)


def annotate_latest(frame: np.ndarray, latest: PredictionEvent | None, spec: PreprocessSpec, *,
                    threshold: float, heatmap: str, waiting: str) -> np.ndarray:
    """``frame`` (enlarged by :func:`for_display`) with the stream's newest prediction drawn on
    it; the heat map comes from the newest segment the model saw (its frames for ``"rgb"``, its
    S-TDM response for ``"stdm"``)."""
    shown = for_display(frame)
    if latest is None:
        return annotate(shown, [], title=waiting)
    segment = [f.image for f in latest.window.frames[-1]]
    if segment and segment[0].shape != frame.shape:
        segment = None  # the stream changed size since that window: no map rather than a wrong one
    response = latest.response.detach().float().cpu().numpy() if latest.response is not None else None
    return annotate(shown, latest.prediction.topk, threshold=threshold, heatmap=heatmap, segment=segment,
                    response=response, spec=spec)


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def stream_summary(stats: StatsEvent | None, latest: PredictionEvent | None, threshold: float) -> str:
    """One Markdown block: label, state, fps, prediction rate, latency, dropped windows."""
    if stats is None:
        return "stream closed"
    if latest is not None:
        label = claimed_label(latest.prediction.topk, threshold)
        head = f"**{label}**" if label else "*nothing above threshold*"
    else:
        head = "*no prediction*" if stats.state in FINAL_STATES else "*waiting for the first window*"
    return (f"{head}  \n`{stats.state}` {stats.detail}  \n"
            f"{stats.fps:.1f} fps · {stats.prediction_rate:.1f} predictions/s · "
            f"latency p50 {_fmt_ms(stats.latency_ms_p50)} p95 {_fmt_ms(stats.latency_ms_p95)} · "
            f"dropped windows {stats.dropped_windows}")


def topk_scores(scores: np.ndarray, labels: list[str] | None, k: int) -> dict[str, float]:
    """``{label: score}`` of the ``k`` best classes (for ``gr.Label``)."""
    return dict(top_labels(scores, labels, k))


def window_probabilities(result: ClipPrediction) -> np.ndarray:
    """Softmax of each sliding window's logits: float32 ``(W, K)``."""
    return probabilities(torch.stack([w.logits for w in result.windows]))  # W x (K,) -> (W, K)
