"""Pure frame functions for overlays (used by ``tdn stream --write-video`` and the app).

Every function takes uint8 ``(H, W, 3)`` RGB frames and returns a new array; nothing is
modified in place.

- :func:`draw_topk`: top-k labels with confidence bars; entries below the threshold are grey
  and, when the top-1 is below it, the panel says that nothing is claimed. Names are drawn
  whole (the font shrinks to fit, :func:`topk_layout`); only names too long at the smallest font are cut.
- :func:`rgb_difference_map`: the raw temporal differences of a segment's frames, ``(H, W)`` in [0, 1].
- :func:`response_map`: the model's S-TDM response (over the centre crop, 1/4 scale) placed
  where the crop lies in the frame, ``(H, W)`` in [0, 1].
- :func:`blend_heatmap`: a heat map in [0, 1] coloured and blended on a frame (stronger heat,
  more colour; cold areas keep the frame as it is).
- :func:`annotate`: the three together, as a view shows them (the panel optional).
- :func:`heatmap_colours`: the colour map's RGB colours from cold to hot, for a legend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from tdn.transforms import CENTRE, PreprocessSpec, crop_origin, crop_positions, resized_size

HEATMAPS = ("none", "rgb", "stdm")
HEATMAP_OPACITY = 0.6  # how much colour the hottest pixels get
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BAR = (60, 200, 90)  # RGB
_BAR_BELOW = (150, 150, 150)
_COLOURMAP = cv2.COLORMAP_JET  # heat 0 (blue) .. 1 (dark red)


def _check_frame(frame: np.ndarray) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {frame.dtype} {frame.shape}")


def _fit_text(text: str, max_width: int, scale: float, thickness: int) -> str:
    """``text`` as drawn in the panel's font, cut and ended with "..." where wider than ``max_width`` pixels."""
    def width(t: str) -> int:
        return cv2.getTextSize(t, _FONT, scale, thickness)[0][0]

    if width(text) <= max_width:
        return text
    while text and width(text + "...") > max_width:
        text = text[:-1]
    return text.rstrip() + "..."


@dataclass(frozen=True)
class PanelLayout:
    """Where :func:`draw_topk` puts things: font ``scale``, the label ``texts`` as drawn (whole
    names where they fit at any scale down to ``MIN_SCALE``), the bars' ``bar_x``/``bar_w`` and the panel's width."""
    scale: float
    thickness: int
    line: int
    texts: tuple[str, ...]
    bar_x: int
    bar_w: int
    width: int


MIN_SCALE = 0.3  # smallest font scale before names are cut


def topk_layout(frame_width: int, topk: Sequence[tuple[str, float]]) -> PanelLayout:
    """The panel for ``topk`` on a frame ``frame_width`` pixels wide: the font shrinks (down to
    ``MIN_SCALE``) until the longest name, its score and a bar fit; only then are names cut."""
    scale = max(0.35, min(1.0, frame_width / 900))
    texts = [f"{name} {score:.2f}" for name, score in topk]
    while True:
        thickness = 1 if scale < 0.7 else 2
        label_scale = scale * 0.8
        bar_w = max(40, frame_width // 6)
        text_w = max((cv2.getTextSize(t, _FONT, label_scale, thickness)[0][0] for t in texts), default=0)
        if 6 + text_w + 10 + bar_w + 8 <= frame_width or scale <= MIN_SCALE:
            break
        scale = max(MIN_SCALE, scale * 0.9)
    text_room = max(10, min(text_w, frame_width - 24 - bar_w))
    fitted = []
    for (name, score), text in zip(topk, texts):  # where the name still does not fit, cut it, keep the score
        score_text = f" {score:.2f}"
        score_w = cv2.getTextSize(score_text, _FONT, label_scale, thickness)[0][0]
        fitted.append(text if cv2.getTextSize(text, _FONT, label_scale, thickness)[0][0] <= text_room
                      else _fit_text(name, text_room - score_w, label_scale, thickness) + score_text)
    bar_x = 6 + text_room + 10
    return PanelLayout(scale=scale, thickness=thickness, line=int(28 * scale) + 6, texts=tuple(fitted), bar_x=bar_x,
                       bar_w=bar_w, width=min(frame_width, bar_x + bar_w + 8))


def draw_topk(frame: np.ndarray, topk: Sequence[tuple[str, float]], *, threshold: float = 0.0,
              title: str | None = None) -> np.ndarray:
    """Labels with confidence bars in a translucent panel at the top left (:func:`topk_layout`)."""
    _check_frame(frame)
    out = frame.copy()
    h, w = out.shape[:2]
    layout = topk_layout(w, topk)
    scale, thickness, line = layout.scale, layout.thickness, layout.line
    uncertain = bool(topk) and topk[0][1] < threshold
    lines = ([title] if title else []) + list(layout.texts) + (["no action above threshold"] if uncertain else [])
    title_w = cv2.getTextSize(title, _FONT, scale, thickness)[0][0] + 12 if title else 0
    panel_w = min(w, max(layout.width, title_w, int(w * 0.4)))
    panel_h = min(h, line * len(lines) + 8)
    region = out[:panel_h, :panel_w].astype(np.float32)
    out[:panel_h, :panel_w] = (region * 0.45).astype(np.uint8)  # darken behind the text
    y = line
    if title:
        cv2.putText(out, _fit_text(title, panel_w - 12, scale, thickness), (6, y - 6), _FONT, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
        y += line
    bar_x, bar_w = layout.bar_x, layout.bar_w
    for (name, score), text in zip(topk, layout.texts):
        claimed = score >= threshold
        colour = (255, 255, 255) if claimed else (170, 170, 170)
        cv2.putText(out, text, (6, y - 6), _FONT, scale * 0.8, colour, thickness, cv2.LINE_AA)
        filled = int(round(bar_w * min(max(score, 0.0), 1.0)))
        cv2.rectangle(out, (bar_x, y - line + 8), (bar_x + bar_w, y - 4), (90, 90, 90), 1)
        if filled > 0:
            cv2.rectangle(out, (bar_x, y - line + 8), (bar_x + filled, y - 4), _BAR if claimed else _BAR_BELOW, -1)
        y += line
    if uncertain:
        cv2.putText(out, "no action above threshold", (6, y - 6), _FONT, scale * 0.8, (255, 200, 80), thickness,
                    cv2.LINE_AA)
    return out


def _normalise(heat: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 99th percentile (robust to a few hot pixels); all-zero stays zero."""
    top = float(np.percentile(heat, 99)) if heat.size else 0.0
    if top <= 1e-6:
        return np.zeros_like(heat, dtype=np.float32)
    return np.clip(heat / top, 0.0, 1.0).astype(np.float32)


def rgb_difference_map(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Mean absolute difference between consecutive frames (over pairs and channels), ``(H, W)``
    float32 in [0, 1]: where things moved within the segment."""
    if len(frames) < 2:
        raise ValueError(f"a difference map needs at least 2 frames, got {len(frames)}")
    stack = np.stack(frames).astype(np.int16)  # (L, H, W, 3)
    diffs = np.abs(np.diff(stack, axis=0)).mean(axis=(0, 3))  # (L-1, H, W, 3) -> (H, W)
    return _normalise(diffs)


def crop_box(height: int, width: int, spec: PreprocessSpec, position: float = CENTRE) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the model's crop in the original frame's pixels."""
    rh, rw = resized_size(height, width, spec.resize_short)
    px, py = crop_positions(rh, rw, position)
    x0, y0 = crop_origin(rw, spec.input_size, px), crop_origin(rh, spec.input_size, py)
    sx, sy = width / rw, height / rh
    return (int(round(x0 * sx)), int(round(y0 * sy)), int(round((x0 + spec.input_size) * sx)),
            int(round((y0 + spec.input_size) * sy)))


def response_map(response: np.ndarray, frame_shape: tuple[int, ...], spec: PreprocessSpec,
                 position: float = CENTRE) -> np.ndarray:
    """The S-TDM response ``(h, w)`` (over the crop) as an ``(H, W)`` map in [0, 1] over the frame."""
    height, width = frame_shape[:2]
    x0, y0, x1, y1 = crop_box(height, width, spec, position)
    heat = np.zeros((height, width), np.float32)
    resized = cv2.resize(np.asarray(response, np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    heat[y0:y1, x0:x1] = resized
    return _normalise(heat)


def blend_heatmap(frame: np.ndarray, heat: np.ndarray, *, alpha: float = HEATMAP_OPACITY) -> np.ndarray:
    """Colour ``heat`` (``(h, w)`` in [0, 1], resized to the frame) with a JET map and blend it in,
    weighted by the heat itself."""
    _check_frame(frame)
    h, w = frame.shape[:2]
    if heat.shape != (h, w):
        heat = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, 1.0)
    colour = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), _COLOURMAP), cv2.COLOR_BGR2RGB)
    weight = (alpha * heat)[..., None]
    return (frame * (1.0 - weight) + colour * weight).round().astype(np.uint8)


def heatmap_colours(steps: int = 9) -> list[tuple[int, int, int]]:
    """RGB colours :func:`blend_heatmap` gives heat 0 .. 1 in ``steps`` even steps (cold to hot)."""
    heat = np.linspace(0, 255, steps).round().astype(np.uint8)[:, None]  # (steps, 1) as a one-column image
    rgb = cv2.cvtColor(cv2.applyColorMap(heat, _COLOURMAP), cv2.COLOR_BGR2RGB)  # (steps, 1, 3)
    return [tuple(int(c) for c in row[0]) for row in rgb]


def annotate(frame: np.ndarray, topk: Sequence[tuple[str, float]], *, threshold: float = 0.0,
             heatmap: str = "none", segment: Sequence[np.ndarray] | None = None,
             response: np.ndarray | None = None, spec: PreprocessSpec | None = None,
             title: str | None = None, opacity: float = HEATMAP_OPACITY, panel: bool = True) -> np.ndarray:
    """A frame with a heat map (``"rgb"``: differences of ``segment``; ``"stdm"``: ``response``
    over ``spec``'s crop; ``"none"``) blended at most ``opacity``, and the top-k panel on top
    (``panel=False``: the map only, for views that list the labels beside the frame)."""
    if heatmap not in HEATMAPS:
        raise ValueError(f"heatmap must be one of {', '.join(HEATMAPS)}, got {heatmap!r}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"heat map opacity must be between 0 and 1, got {opacity}")
    out = frame
    if heatmap == "rgb" and segment is not None and len(segment) > 1:
        out = blend_heatmap(out, rgb_difference_map(segment), alpha=opacity)
    elif heatmap == "stdm" and response is not None and spec is not None:
        out = blend_heatmap(out, response_map(response, frame.shape, spec), alpha=opacity)
    return draw_topk(out, topk, threshold=threshold, title=title) if panel else out
