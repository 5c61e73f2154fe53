"""Clip-level prediction for video files: the standard TDN test protocol, plus per-window results.

The views (``"1x1"``: T centred segments, centre crop; ``"10x3"``: 10 temporal clips x 3 crops)
and their frames are TDN's test protocol (:mod:`tdn.sampling`); frames are resized and cropped
by the engine's preprocessor (:mod:`tdn.transforms`). Softmax scores are averaged over the views.

Per-window (``per_window=True``): the file is read in order and cut into windows exactly as a
live stream is (:class:`pipelines.scheduler.WindowScheduler` over frame times ``index / fps``),
each scored through :meth:`pipelines.engine.InferenceEngine.run_windows` with the segment
cache: a timeline of what the live path would have said. That one pass also keeps the frames
the views need (so the file is decoded once) and hands every decoded frame and scored window
to an optional :class:`ClipFrameSink` (the app's annotated video is drawn as the file is read).

Frames are counted first from the container; when that count is wrong or missing, the file is
read once more with the exact count. When fewer frames decode than the container declares (a
truncated or damaged file), the prediction is made from those that did and carries a
``warning`` saying how many of how many. When the backend decodes files itself (DALI), OpenCV
counts the frames of WebM/Matroska files first (their containers only estimate it, and DALI pads
indices past the end with black frames).

Files are checked, probed and decoded by :mod:`tdn.video`, so memory is bounded by design
(docs/limits.md): frames are resized as decoded, only the frames the views need are kept (the
per-window path keeps a rolling set of one window), and a job whose estimated need
(:func:`clip_job_need`) exceeds ``limit_mb`` is refused before decoding. Bad files raise
:class:`tdn.video.ClipError` (a ValueError) naming the file.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Protocol, Sequence

import numpy as np
import torch

from pipelines.postprocess import probabilities
from pipelines.scheduler import WindowScheduler
from pipelines.types import Frame
from tdn.sampling import SEGMENT_LENGTH, parse_views, temporal_clip_indices
from tdn.video import (ClipError, ClipInfo, ProgressCallback, bgr_to_model_rgb, check_memory, clip_frame_indices,
                       fourcc, frame_rate, memory_need, open_video, probe_clip, read_clip_frames, read_frames)

# WebM/Matroska has no frame index: OpenCV estimates the count from the duration
ESTIMATED_COUNT_CODECS = frozenset({"VP80", "VP90", "VP09"})


@dataclass(frozen=True)
class ClipWindow:
    """One sliding window of a clip: ``time`` is its newest frame's time in the clip (s);
    ``response``: the S-TDM response of its newest segment, float16 ``(S/4, S/4)`` over the
    centre crop, kept for the annotated video (None for variants without S-TDM)."""

    time: float
    logits: torch.Tensor
    response: np.ndarray | None = None


@dataclass(frozen=True)
class ClipPrediction:
    """``scores``: float32 ``(K,)`` softmax averaged over the views; ``windows``: the per-window
    timeline (None unless asked for); ``frames``/``fps``: what was read from the file; ``warning``:
    what the caller should be told (the file was only partly decodable), else None."""

    source: str
    scores: np.ndarray
    views: str
    frames: int
    fps: float
    windows: list[ClipWindow] | None
    warning: str | None = None  # e.g. fewer frames decoded than the container declares


class ClipFrameSink(Protocol):
    """Takes a clip's frames as they are decoded and its windows as they are scored (``per_window`` only)."""

    def frame(self, index: int, bgr: np.ndarray) -> None:
        """Frame ``index`` (at ``index / fps`` s) as decoded: uint8 BGR at the source size."""

    def windows(self, scored: Sequence[ClipWindow], complete_before: float) -> None:
        """New windows, in time order; every window earlier than ``complete_before`` s (inf at the end) is now known."""


def truncation_warning(decoded: int, declared: int) -> str | None:
    """The warning for a file of which only ``decoded`` of the ``declared`` frames decode (None if all did)."""
    if 0 < decoded < declared:
        return (f"only {decoded} of {declared} frames could be decoded (the file is truncated or damaged); "
                f"the prediction uses those {decoded}")
    return None


# -- prediction ------------------------------------------------------------------------------
def _clip_views(engine, path: Path, num_frames: int, info: ClipInfo, clips: int,
                positions: Sequence[float], frames: dict[int, np.ndarray] | None):
    """Per temporal clip, its views as float32 ``(crops, T, L, 3, S, S)``; DALI decodes itself
    when ``frames`` is None. One clip at a time bounds memory (10x3 at 224 px would be 0.7 GB)."""
    t = engine.num_segments
    for indices in temporal_clip_indices(num_frames, t, clips, fps=info.fps, step_s=engine.model.meta.segment_step_s):
        if frames is None:
            decoded = engine.preprocessor.decode_segments(str(path), indices, info.size, positions)
            yield decoded.unflatten(1, (t, SEGMENT_LENGTH))  # (crops, T*L, 3, S, S) -> (crops, T, L, 3, S, S)
        else:
            segments = [[frames[i] for i in indices[s * SEGMENT_LENGTH:(s + 1) * SEGMENT_LENGTH]] for s in range(t)]
            out = engine.preprocessor.segments(segments * len(positions), [p for p in positions for _ in range(t)])
            yield out.unflatten(0, (len(positions), t))  # (crops*T, L, 3, S, S) -> (crops, T, L, 3, S, S)


def rolling_frames(fps: float, window_seconds: float) -> int:
    """Frames the per-window path keeps: as far back as a window can reach (its span, a second of slack, 2 segments)."""
    return int(math.ceil((window_seconds + 1.0) * fps)) + 2 * SEGMENT_LENGTH


def clip_job_need(engine, info: ClipInfo, views: str, *, per_window: bool, window_seconds: float) -> int:
    """:func:`tdn.video.memory_need` of :func:`predict_clip` decoding with OpenCV: the views' frames and one
    temporal clip's inputs, plus (``per_window``) the rolling frames and a batch of windows."""
    clips, positions = parse_views(views)
    t, batch = engine.num_segments, engine.max_batch
    kept = clips * t * SEGMENT_LENGTH
    if per_window:
        kept += rolling_frames(info.fps, window_seconds) + batch * t * SEGMENT_LENGTH
    return memory_need(info.size, engine.preprocessor.spec, kept_frames=kept,
                       input_views=len(positions) + (batch if per_window else 0), num_segments=t)


def _decode_views(engine, path: Path, views: str, *, per_window: bool, window_seconds: float, max_gap_s: float,
                  limit_mb: float | None, progress: ProgressCallback | None, sink: ClipFrameSink | None):
    """Check and decode ``path`` for ``views`` (with ``per_window``, in the one sliding-window pass that
    also scores the windows): ``(info, num_frames, windows, views_per_clip)``, the last an iterator of
    each temporal clip's views as float32 ``(crops, T, L, 3, S, S)``."""
    if sink is not None and not per_window:
        raise ValueError("a frame sink needs per_window=True (it is fed by the sliding-window pass)")
    clips, positions = parse_views(views)
    t, step = engine.num_segments, engine.model.meta.segment_step_s
    spec = engine.preprocessor.spec
    if progress is not None:
        progress(0.0, f"opening {path.name}")
    info = probe_clip(path, spec.resize_short)
    what = f"{views} views x {t} segments of {info.size[1]}x{info.size[0]} frames" + (" per window" * per_window)
    check_memory(path, clip_job_need(engine, info, views, per_window=per_window, window_seconds=window_seconds),
                 limit_mb, what)
    # the backend decodes itself, at the source size: T * L frames per temporal clip
    dali_frames = t * SEGMENT_LENGTH * info.size[0] * info.size[1] * 3
    fits = limit_mb is None or dali_frames <= limit_mb * 2**20
    backend_decodes = engine.preprocessor.can_decode(str(path)) and fits
    num_frames, frames, windows = info.declared, None, None
    if per_window:
        wanted = set() if backend_decodes else clip_frame_indices(info.declared, t, clips, info.fps, step)
        windows, frames, num_frames = sliding_windows(engine, path, window_seconds=window_seconds, max_gap_s=max_gap_s,
                                                      progress=progress, total=info.declared, keep=wanted, sink=sink)
        if num_frames == 0:
            raise ClipError(f"{path} has no decodable video frames")
        if not backend_decodes and num_frames != info.declared:  # the container's count was wrong: select again
            frames = read_frames(path, clip_frame_indices(num_frames, t, clips, info.fps, step),
                                 resize_short=spec.resize_short)[0]
    elif backend_decodes:
        if num_frames == 0 or fourcc(path) in ESTIMATED_COUNT_CODECS:  # DALI needs the exact count
            num_frames = read_frames(path, set(), progress=progress, expected=num_frames)[1]
        if num_frames == 0:
            raise ClipError(f"{path} has no decodable video frames")
    else:
        frames, num_frames = read_clip_frames(path, info, t, clips, spec.resize_short, step_s=step, progress=progress)
    if backend_decodes:
        frames = None  # DALI reads the views' frames itself
    return info, num_frames, windows, _clip_views(engine, path, num_frames, info, clips, positions, frames)


@torch.inference_mode()
def predict_clip(engine, path: str | Path, *, views: str = "1x1", per_window: bool = False,
                 window_seconds: float = 2.0, max_gap_s: float = 1.0, limit_mb: float | None = None,
                 progress: ProgressCallback | None = None, sink: ClipFrameSink | None = None) -> ClipPrediction:
    """Score one video file with ``engine``'s model and preprocessor (see the module docstring);
    a job needing more than ``limit_mb`` (None: no limit) is refused before decoding."""
    path = Path(path)
    info, num_frames, windows, views_per_clip = _decode_views(
        engine, path, views, per_window=per_window, window_seconds=window_seconds, max_gap_s=max_gap_s,
        limit_mb=limit_mb, progress=progress, sink=sink)
    if progress is not None:
        progress(0.95 if per_window else 0.9, f"scoring the {views} views")
    view_scores = []
    for views_of_clip in views_per_clip:
        for start in range(0, len(views_of_clip), engine.max_batch):
            with engine.model_lock:
                logits = engine.model(views_of_clip[start:start + engine.max_batch])
            view_scores.append(probabilities(logits))  # (views, K)
    scores = np.concatenate(view_scores).mean(0)  # the mean over all clips x crops
    if progress is not None:
        progress(1.0, "done")
    return ClipPrediction(source=str(path), scores=scores, views=views, frames=num_frames, fps=info.fps,
                          windows=windows, warning=truncation_warning(num_frames, info.declared))


@torch.inference_mode()
def predict_clips(engine, paths: Sequence[str | Path], *,
                  limit_mb: float | None = None) -> list[ClipPrediction | ClipError]:
    """Score several files at the 1x1 view, their views through the model together (batches of at
    most ``engine.max_batch``): for clip uploads that arrive together. A file that cannot be
    scored gives its ``ClipError`` in its place; the others are still scored."""
    decoded: list[tuple[Path, ClipInfo, int, torch.Tensor] | ClipError] = []
    for path in map(Path, paths):
        try:
            info, num_frames, _, views_per_clip = _decode_views(
                engine, path, "1x1", per_window=False, window_seconds=0.0, max_gap_s=0.0, limit_mb=limit_mb,
                progress=None, sink=None)
            decoded.append((path, info, num_frames, next(iter(views_per_clip))))  # (1, T, L, 3, S, S)
        except ClipError as exc:
            decoded.append(exc)
    good = [d for d in decoded if not isinstance(d, ClipError)]
    scores = []
    if good:
        stacked = torch.cat([d[3] for d in good])  # (clips, T, L, 3, S, S)
        for start in range(0, len(stacked), engine.max_batch):
            with engine.model_lock:
                scores.append(probabilities(engine.model(stacked[start:start + engine.max_batch])))  # (n, K)
        scores = list(np.concatenate(scores))
    results = []
    for d in decoded:
        if isinstance(d, ClipError):
            results.append(d)
            continue
        path, info, num_frames, _ = d
        warning = truncation_warning(num_frames, info.declared)
        results.append(ClipPrediction(source=str(path), scores=scores.pop(0), views="1x1", frames=num_frames,
                                      fps=info.fps, windows=None, warning=warning))
    return results


def sliding_windows(engine, path: str | Path, *, window_seconds: float = 2.0, max_gap_s: float = 1.0,
                    progress: ProgressCallback | None = None, total: int = 0, keep: AbstractSet[int] = frozenset(),
                    sink: ClipFrameSink | None = None) -> tuple[list[ClipWindow], dict[int, np.ndarray], int]:
    """Every window the live scheduler would emit over the file played at its frame rate
    (frame ``i`` at ``i / fps`` s), scored in batches with the segment cache; also the model-size
    RGB frames whose indices are in ``keep``, and the number of frames decoded. ``sink`` gets
    every frame and window (:class:`ClipFrameSink`); ``progress`` runs to 0.95 over ``total`` frames."""
    path = Path(path)
    capture = open_video(path)
    fps = frame_rate(capture)
    scheduler = WindowScheduler(num_segments=engine.num_segments, window_seconds=window_seconds, max_gap_s=max_gap_s,
                                segment_step_s=engine.model.meta.segment_step_s)
    stream = f"clip {id(scheduler)} {path}"  # a private cache namespace, dropped at the end
    recent: deque[Frame] = deque(maxlen=rolling_frames(fps, window_seconds))
    resize_short = engine.preprocessor.spec.resize_short
    pending: list = []
    results: list[ClipWindow] = []
    kept: dict[int, np.ndarray] = {}

    def flush():
        scored = []
        for result in engine.run_windows(pending):
            response = None if result.response is None else result.response.numpy().astype(np.float16)
            scored.append(ClipWindow(time=result.window.newest_t, logits=result.logits, response=response))
        pending.clear()
        results.extend(scored)
        return scored

    index = 0
    try:
        while capture.grab():
            ok, bgr = capture.retrieve()
            if not ok:
                break
            image = bgr_to_model_rgb(bgr, path, resize_short)
            if index in keep:
                kept[index] = image
            if sink is not None:
                sink.frame(index, bgr)
            recent.append(Frame(image=image, t=index / fps, index=index))
            index += 1
            window = scheduler.next_window(stream, list(recent))
            if window is not None:
                pending.append(window)
            if len(pending) == engine.max_batch:
                scored = flush()
                if sink is not None:
                    sink.windows(scored, complete_before=(index - 1) / fps + 1e-6)
                if progress is not None and total:
                    progress(min(0.95, 0.95 * index / total), f"scoring windows: {index / fps:.1f} s of the clip")
            elif sink is not None and not pending:
                sink.windows([], complete_before=(index - 1) / fps + 1e-6)
        scored = flush() if pending else []
        if sink is not None:
            sink.windows(scored, complete_before=math.inf)
    finally:
        capture.release()
        engine.forget_stream(stream)
    return results, kept, index
