"""Clip-level prediction for video files: the standard TDN test protocol, plus per-window results.

Clip level (``views="1x1"``): T segments spread uniformly over the clip. With ``n`` frames and
L = 5 frames per segment, ``tick = (n - L + 1) / T`` and segment ``t`` covers frames
``start_t .. start_t + 4`` with ``start_t = int(tick * (t + 1/2))`` (TSN/TDN's test
indices); a clip with ``n <= T + L - 1`` frames uses ``start_t = 0`` for all segments and
indices past the end repeat the last frame. Frames are resized (short side) and centre-cropped
as in :mod:`pipelines.preprocess`.

Dense (``views="10x3"``): 10 temporal clips x 3 spatial crops. Clip ``c`` of ``C`` shifts every
segment by a fraction of a tick, ``start_t = int(tick * (t + (c + 1/2) / C))``, so the ten
clips together cover the video evenly; the crops sit at the left, centre and right (top,
centre, bottom for portrait video) of the long side. Softmax scores are averaged over the 30
views.

Per-window (``per_window=True``): the file is read in order and cut into windows exactly as a
live stream is (:class:`pipelines.scheduler.WindowScheduler` over frame times ``index / fps``),
each scored through :meth:`pipelines.engine.InferenceEngine.run_windows` with the segment
cache: a timeline of what the live path would have said.

Frames are counted first from the container; when that count is wrong or missing, the file is
read once more with the exact count. When the backend decodes files itself (DALI), OpenCV counts
the frames of WebM/Matroska files first (their containers only estimate it, and DALI pads
indices past the end with black frames). Bad files raise :class:`ClipError` (a ValueError) naming
the file.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from pipelines.preprocess import CENTRE, THREE_CROPS
from pipelines.scheduler import WindowScheduler
from pipelines.types import SEGMENT_LENGTH, Frame

VIEWS = {"1x1": (1, (CENTRE,)), "10x3": (10, THREE_CROPS)}
# WebM/Matroska has no frame index: OpenCV estimates the count from the duration
ESTIMATED_COUNT_CODECS = frozenset({"VP80", "VP90", "VP09"})
ProgressCallback = Callable[[float, str], None]  # (fraction done 0..1, what is happening)


class ClipError(ValueError):
    """A video file cannot be used; the message names the file and what is wrong."""


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
    timeline (None unless asked for); ``frames``/``fps``: what was read from the file."""

    source: str
    scores: np.ndarray
    views: str
    frames: int
    fps: float
    windows: list[ClipWindow] | None


def segment_starts(num_frames: int, num_segments: int, *, clip: int = 0, clips: int = 1,
                   length: int = SEGMENT_LENGTH) -> list[int]:
    """First frame of each segment; see the module docstring. ``segment_starts(100, 4)`` ->
    ``[12, 36, 60, 84]`` (tick 24)."""
    if num_frames <= num_segments + length - 1:
        return [0] * num_segments
    tick = (num_frames - length + 1) / num_segments
    return [int(tick * (t + (clip + 0.5) / clips)) for t in range(num_segments)]


def clip_frame_indices(num_frames: int, num_segments: int, *, clip: int = 0, clips: int = 1,
                       length: int = SEGMENT_LENGTH) -> list[int]:
    """The ``T * L`` frame indices of one temporal clip, segment by segment (last frame repeated past the end)."""
    return [min(start + j, num_frames - 1)
            for start in segment_starts(num_frames, num_segments, clip=clip, clips=clips, length=length)
            for j in range(length)]


def parse_views(views: str) -> tuple[int, tuple[float, ...]]:
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(VIEWS)} (temporal clips x spatial crops), got {views!r}")
    return VIEWS[views]


# -- reading files ---------------------------------------------------------------------------
def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise ClipError(f"{path} is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ClipError(f"{path} is not a video OpenCV/FFmpeg can open")
    return capture


def fourcc(path: str | Path) -> str:
    """The video codec's FourCC as OpenCV's demuxer reports it (``""`` when unknown)."""
    capture = cv2.VideoCapture(str(path))
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC)) if capture.isOpened() else 0
    finally:
        capture.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").strip("\x00") if code else ""


def _frame_rate(capture: cv2.VideoCapture) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else 25.0


def read_frames(path: Path, wanted: set[int], *, progress: ProgressCallback | None = None, expected: int = 0,
                stop_after_last: bool = False) -> tuple[dict[int, np.ndarray], int]:
    """Frames ``wanted`` (RGB) from one pass over the file, and the number of frames decoded.

    With ``stop_after_last`` the pass ends after the last wanted frame, so the count is only
    the file's length when it is not beyond that frame. ``expected`` scales the progress.
    """
    capture = _open(path)
    selected: dict[int, np.ndarray] = {}
    count = 0
    try:
        last = max(wanted, default=-1)
        while not (stop_after_last and count > last) and capture.grab():
            if count in wanted:
                ok, image = capture.retrieve()
                if not ok:
                    break
                selected[count] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            count += 1
            if progress is not None and count % 25 == 0:
                progress(min(0.9, 0.9 * count / max(expected, last + 1, 1)), f"reading frame {count}")
    finally:
        capture.release()
    return selected, count


def _probe(path: Path) -> tuple[int, float, tuple[int, int]]:
    """(frame count from the container, 0 if unknown; fps; (height, width))."""
    capture = _open(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = _frame_rate(capture)
        size = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        capture.release()
    return max(count, 0), fps, size


def _all_indices(num_frames: int, num_segments: int, clips: int) -> list[list[int]]:
    return [clip_frame_indices(num_frames, num_segments, clip=c, clips=clips) for c in range(clips)]


# -- prediction ------------------------------------------------------------------------------
def _clip_views(engine, path: Path, num_frames: int, frame_size: tuple[int, int], clips: int,
                positions: Sequence[float], frames: dict[int, np.ndarray] | None):
    """Per temporal clip, its views as float32 ``(crops, T, L, 3, S, S)``; DALI decodes itself
    when ``frames`` is None. One clip at a time bounds memory (10x3 at 224 px would be 0.7 GB)."""
    t = engine.num_segments
    for indices in _all_indices(num_frames, t, clips):
        if frames is None:
            decoded = engine.preprocessor.decode_segments(str(path), indices, frame_size, positions)
            yield decoded.unflatten(1, (t, SEGMENT_LENGTH))  # (crops, T*L, 3, S, S) -> (crops, T, L, 3, S, S)
        else:
            segments = [[frames[i] for i in indices[s * SEGMENT_LENGTH:(s + 1) * SEGMENT_LENGTH]] for s in range(t)]
            out = engine.preprocessor.segments(segments * len(positions), [p for p in positions for _ in range(t)])
            yield out.unflatten(0, (len(positions), t))  # (crops*T, L, 3, S, S) -> (crops, T, L, 3, S, S)


def _read_clip_frames(path: Path, num_segments: int, clips: int, progress: ProgressCallback | None):
    """The frames every view needs, the exact frame count and (height, width)."""
    count, fps, size = _probe(path)
    wanted = {i for idx in _all_indices(count, num_segments, clips) for i in idx} if count else set()
    frames, actual = read_frames(path, wanted, progress=progress, expected=count)
    if actual == 0:
        raise ClipError(f"{path} has no decodable video frames")
    if actual != count:  # the container's count was wrong or missing: select again with the true one
        wanted = {i for idx in _all_indices(actual, num_segments, clips) for i in idx}
        frames, actual = read_frames(path, wanted, progress=progress, expected=actual)
    size = next(iter(frames.values())).shape[:2]
    return frames, actual, fps, size


@torch.inference_mode()
def predict_clip(engine, path: str | Path, *, views: str = "1x1", per_window: bool = False,
                 window_seconds: float = 2.0, max_gap_s: float = 1.0,
                 progress: ProgressCallback | None = None) -> ClipPrediction:
    """Score one video file with ``engine``'s model and preprocessor (see the module docstring)."""
    path = Path(path)
    clips, positions = parse_views(views)
    model, t = engine.model, engine.num_segments
    if progress is not None:
        progress(0.0, f"opening {path.name}")
    if engine.preprocessor.can_decode(str(path)):  # the backend decodes itself and needs the exact count
        num_frames, fps, size = _probe(path)
        if num_frames == 0 or fourcc(path) in ESTIMATED_COUNT_CODECS:
            num_frames = read_frames(path, set(), progress=progress, expected=num_frames)[1]
        if num_frames == 0:
            raise ClipError(f"{path} has no decodable video frames")
        frames = None
    else:
        frames, num_frames, fps, size = _read_clip_frames(path, t, clips, progress)
    probabilities = []
    for views_of_clip in _clip_views(engine, path, num_frames, size, clips, positions, frames):
        for start in range(0, len(views_of_clip), engine.max_batch):
            with engine.model_lock:
                logits = model(views_of_clip[start:start + engine.max_batch])
            probabilities.append(torch.softmax(logits.float(), 1).cpu())
    scores = torch.cat(probabilities).mean(0).numpy()  # the mean over all clips x crops
    windows = None
    if per_window:
        windows = sliding_windows(engine, path, window_seconds=window_seconds, max_gap_s=max_gap_s,
                                  progress=progress, total=num_frames)
    if progress is not None:
        progress(1.0, "done")
    return ClipPrediction(source=str(path), scores=scores, views=views, frames=num_frames, fps=fps, windows=windows)


def sliding_windows(engine, path: str | Path, *, window_seconds: float = 2.0, max_gap_s: float = 1.0,
                    progress: ProgressCallback | None = None, total: int = 0) -> list[ClipWindow]:
    """Every window the live scheduler would emit over the file played at its frame rate
    (frame ``i`` at ``i / fps`` s), scored in batches with the segment cache."""
    path = Path(path)
    capture = _open(path)
    fps = _frame_rate(capture)
    scheduler = WindowScheduler(num_segments=engine.num_segments, window_seconds=window_seconds, max_gap_s=max_gap_s)
    stream = f"clip {id(scheduler)} {path}"  # a private cache namespace, dropped at the end
    keep = int(math.ceil((window_seconds + 1.0) * fps)) + 2 * SEGMENT_LENGTH  # frames a window can reach back to
    recent: deque[Frame] = deque(maxlen=keep)
    pending, results = [], []

    def flush():
        for result in engine.run_windows(pending):
            response = None if result.response is None else result.response.numpy().astype(np.float16)
            results.append(ClipWindow(time=result.window.newest_t, logits=result.logits, response=response))
        pending.clear()

    try:
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            recent.append(Frame(image=cv2.cvtColor(image, cv2.COLOR_BGR2RGB), t=index / fps, index=index))
            index += 1
            window = scheduler.next_window(stream, list(recent))
            if window is not None:
                pending.append(window)
                if len(pending) == engine.max_batch:
                    flush()
                    if progress is not None and total:
                        progress(min(0.99, index / total), f"window at {window.newest_t:.1f} s")
        if pending:
            flush()
    finally:
        capture.release()
        engine.forget_stream(stream)
    return results
