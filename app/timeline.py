"""The clip timeline as an SVG for ``gr.HTML``: the segments as coloured bands, the top classes'
window scores as lines, and a playhead linked to the annotated video (:data:`TIMELINE_JS`:
clicking the timeline seeks the video, the playhead follows playback).

Pure: :func:`timeline_svg` builds the markup from the segments and the windows' probabilities.
A class keeps one colour in the bands and the lines (by its index in the model's labels).
"""
from __future__ import annotations

from html import escape
from typing import Sequence

import numpy as np

from pipelines.postprocess import top_indices
from pipelines.segments import UNCERTAIN, Segment, format_seconds
from tdn.labels import label_name

WIDTH, LEFT, RIGHT = 1000, 40, 10  # viewBox width; plot margins
BAND_TOP, BAND_H = 22, 34  # segment bands
PLOT_TOP, PLOT_H = 70, 120  # score lines (probability 0..1)
HEIGHT = PLOT_TOP + PLOT_H + 28
TIMELINE_CLASSES = 5  # classes drawn as score lines
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
UNCERTAIN_COLOUR = "#b0b0b0"


def class_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _x(t: float, duration: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * min(max(t / duration, 0.0), 1.0)


def _tick_step(duration: float) -> float:
    """A tick spacing giving about 5-10 ticks."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if duration / step <= 10:
            return step
    return duration / 5


def timeline_svg(segments: Sequence[Segment], times: Sequence[float], probs: np.ndarray | None,
                 labels: list[str] | None, duration_s: float, classes: int = TIMELINE_CLASSES) -> str:
    """The timeline of a clip ``duration_s`` long: ``segments`` as bands, and the window scores
    ``probs`` ``(W, K)`` at ``times`` (the middle of each window, where the segments place it) as
    lines for the ``classes`` classes that score highest
    (no segments: a line saying there is no timeline)."""
    if duration_s <= 0 or not segments or probs is None:
        return '<div class="tdn-timeline-empty">no sliding window fits in the clip: no timeline</div>'
    index_of = {label_name(labels, k): k for k in range(probs.shape[1])}
    parts = [f'<svg class="tdn-timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
             f'aria-label="clip timeline" data-duration="{duration_s:.3f}" data-left="{LEFT}" '
             f'data-right="{WIDTH - RIGHT}" style="cursor:pointer;font:12px sans-serif;user-select:none">'
             '<style>.tdn-timeline text{pointer-events:none}</style>',
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="14" fill="#444">segments (click to seek); below: each window\'s scores at its middle'
             '</text>']
    for s in segments:
        x0, x1 = _x(s.start_s, duration_s), _x(s.end_s, duration_s)
        name = s.label or UNCERTAIN
        colour = UNCERTAIN_COLOUR if s.label is None else class_colour(index_of.get(s.label, 0))
        title = f"{name} {format_seconds(s.start_s)}-{format_seconds(s.end_s)} s, mean score {s.score:.2f}"
        parts.append(f'<g class="tdn-segment" data-label="{escape(name)}" data-start="{s.start_s:.3f}" '
                     f'data-end="{s.end_s:.3f}"><title>{escape(title)}</title>'
                     f'<rect x="{x0:.1f}" y="{BAND_TOP}" width="{max(x1 - x0, 1):.1f}" height="{BAND_H}" '
                     f'fill="{colour}" fill-opacity="0.85" stroke="white"/>')
        if x1 - x0 > 60:
            parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{BAND_TOP + BAND_H / 2 + 4}" text-anchor="middle" '
                         f'fill="white" font-weight="bold">{escape(name)} {s.score:.2f}</text>')
        parts.append('</g>')
    # score lines: probability 0 at the bottom of the plot, 1 at its top
    for p in (0.0, 0.5, 1.0):
        y = PLOT_TOP + PLOT_H * (1 - p)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4}" text-anchor="end" fill="#666">{p:g}</text>')
    shown = top_indices(probs.max(axis=0), classes) if len(times) else []
    for rank, k in enumerate(shown):
        points = " ".join(f"{_x(t, duration_s):.1f},{PLOT_TOP + PLOT_H * (1 - float(probs[i, k])):.1f}"
                          for i, t in enumerate(times))
        name = label_name(labels, int(k))
        parts.append(f'<polyline class="tdn-score" data-label="{escape(name)}" points="{points}" fill="none" '
                     f'stroke="{class_colour(int(k))}" stroke-width="2"><title>{escape(name)}</title></polyline>'
                     f'<text x="{WIDTH - RIGHT - 4}" y="{PLOT_TOP + 12 + 13 * rank}" text-anchor="end" '
                     f'fill="{class_colour(int(k))}">{escape(name)}</text>')
    step = _tick_step(duration_s)
    axis_y = PLOT_TOP + PLOT_H
    for tick in np.arange(0.0, duration_s + 1e-9, step):
        x = _x(float(tick), duration_s)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 5}" stroke="#666"/>'
                     f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle" fill="#666">'
                     f'{format_seconds(float(tick))} s</text>')
    parts.append(f'<line class="tdn-playhead" x1="{LEFT}" x2="{LEFT}" y1="{BAND_TOP - 4}" y2="{axis_y}" '
                 'stroke="black" stroke-width="2"/>')
    parts.append('</svg>')
    return "".join(parts)


# Runs once when the gr.HTML mounts (``element`` is its container); its markup is replaced on
# every new clip, so handlers are delegated from the container and the document.
TIMELINE_JS = """
const videoOf = () => document.querySelector('#clip-annotated video');
const svgOf = () => element.querySelector('svg.tdn-timeline');
const place = (t) => {
  const svg = svgOf();
  if (!svg) return;
  const left = +svg.dataset.left, right = +svg.dataset.right, duration = +svg.dataset.duration;
  const x = left + (right - left) * Math.min(Math.max(t / duration, 0), 1);
  const line = svg.querySelector('.tdn-playhead');
  line.setAttribute('x1', x); line.setAttribute('x2', x);
  svg.dataset.playhead = t.toFixed(3);
};
element.addEventListener('click', (ev) => {
  const svg = svgOf();
  const video = videoOf();
  if (!svg || !video || !svg.contains(ev.target)) return;
  const point = svg.createSVGPoint();
  point.x = ev.clientX; point.y = ev.clientY;
  const x = point.matrixTransform(svg.getScreenCTM().inverse()).x;
  const left = +svg.dataset.left, right = +svg.dataset.right, duration = +svg.dataset.duration;
  const t = Math.min(Math.max((x - left) / (right - left), 0), 1) * duration;
  video.currentTime = Math.min(t, Math.max(0, (video.duration || duration) - 0.01));
  place(t);
});
const follow = (ev) => {
  const video = ev.target;
  if (!(video instanceof HTMLVideoElement) || !video.closest('#clip-annotated')) return;
  place(video.currentTime);
  if (ev.type === 'play') {
    const step = () => { place(video.currentTime); if (!video.paused && !video.ended) requestAnimationFrame(step); };
    requestAnimationFrame(step);
  }
};
for (const kind of ['timeupdate', 'seeked', 'play', 'loadedmetadata']) document.addEventListener(kind, follow, true);
"""
