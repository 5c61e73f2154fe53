"""The annotated clip video, drawn while the clip is read: a :class:`pipelines.clip.ClipFrameSink`.

Each frame shows the prediction of the newest sliding window that ended at or before it (the
overlay of :func:`pipelines.overlay.annotate`, through :func:`app.views.for_display`). Frames
wait in a small buffer until the windows up to their time are scored (at most one batch of
windows: bounded), then are drawn and piped to :class:`tdn.video.BrowserVideoWriter` (H.264
MP4, encoded beside the model by the system ffmpeg).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from app.views import for_display
from pipelines.clip import ClipWindow
from pipelines.overlay import HEATMAP_OPACITY, annotate
from pipelines.postprocess import probabilities, top_labels
from tdn.sampling import SEGMENT_LENGTH
from tdn.transforms import PreprocessSpec
from tdn.video import BrowserVideoWriter


class AnnotatedClipVideo:
    """Writes ``out_path`` from the frames and windows :func:`pipelines.clip.predict_clip` hands it;
    :meth:`close` finishes the file (ValueError if no frame came or encoding failed)."""

    def __init__(self, out_path: str | Path, fps: float, labels: list[str] | None, *, threshold: float, heatmap: str,
                 k: int, spec: PreprocessSpec | None = None, opacity: float = HEATMAP_OPACITY, max_side: int = 480):
        self.out_path, self.fps, self.labels = Path(out_path), fps, labels
        self.threshold, self.heatmap, self.k, self.spec, self.max_side = threshold, heatmap, k, spec, max_side
        self.opacity = opacity  # the heat map's strongest blend, as the page's slider sets it
        self.frames_written = 0
        self._waiting: deque[tuple[int, np.ndarray]] = deque()  # (index, display RGB) until their window is known
        self._recent: deque[np.ndarray] = deque(maxlen=SEGMENT_LENGTH)  # for the RGB-difference heat map
        self._current: tuple[ClipWindow, tuple] | None = None  # the newest window drawn so far and its top-k
        self._known: deque[ClipWindow] = deque()  # scored windows not yet reached by the drawn frames
        self._writer: BrowserVideoWriter | None = None

    def frame(self, index: int, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2),
                             interpolation=cv2.INTER_LINEAR)  # INTER_AREA took most of the drawing time
        self._waiting.append((index, for_display(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))))

    def windows(self, scored: Sequence[ClipWindow], complete_before: float) -> None:
        self._known.extend(scored)
        while self._waiting and self._waiting[0][0] / self.fps < complete_before:
            self._draw(*self._waiting.popleft())

    def _draw(self, index: int, rgb: np.ndarray) -> None:
        t = index / self.fps
        while self._known and self._known[0].time <= t + 1e-6:
            window = self._known.popleft()
            self._current = (window, top_labels(probabilities(window.logits), self.labels, self.k))
        self._recent.append(rgb)
        if self._current is None:
            shown = rgb
        else:
            window, topk = self._current
            response = None if window.response is None else window.response.astype(np.float32)
            shown = annotate(rgb, topk, threshold=self.threshold, heatmap=self.heatmap, segment=list(self._recent),
                             response=response, spec=self.spec, opacity=self.opacity)
        if self._writer is None:
            self._writer = BrowserVideoWriter(self.out_path, self.fps, (shown.shape[1], shown.shape[0]))
        self._writer.write(shown)
        self.frames_written += 1

    def close(self) -> Path:
        if self._writer is None:
            raise ValueError(f"no frames to write to {self.out_path.name}")
        self._writer.release()
        return self.out_path

    def discard(self) -> None:
        """Drop what was written (the clip job failed)."""
        if self._writer is not None:
            self._writer.discard()
