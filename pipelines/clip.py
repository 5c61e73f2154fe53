"""Clip-level prediction for video files: the standard TDN test protocol, plus per-window results.

The views (``"1x1"``: T centred segments, centre crop; ``"10x3"``: 10 temporal clips x 3 crops)
and their frames are TDN's test protocol (:mod:`tdn.sampling`); frames are resized and cropped
by the engine's preprocessor (:mod:`tdn.transforms`). Softmax scores are averaged over the views.

Per-window (``per_window=True``): the file is read in order and cut into windows exactly as a
live stream is (:class:`pipelines.scheduler.WindowScheduler` over frame times ``index / fps``),
each scored through :meth:`pipelines.engine.InferenceEngine.run_windows` with the segment
cache: a timeline of what the live path would have said.

Frames are counted first from the container; when that count is wrong or missing, the file is
read once more with the exact count. When fewer frames decode than the container declares (a
truncated or damaged file), the prediction is made from those that did and carries a
``warning`` saying how many of how many. When the backend decodes files itself (DALI), OpenCV
counts the frames of WebM/Matroska files first (their containers only estimate it, and DALI pads
indices past the end with black frames).

Memory is bounded by design (docs/limits.md): each frame is resized to the model's short side
as it is decoded (the preprocessor's own resize, so the result is the same), only the frames the
views need are kept (the per-window path keeps a rolling set of one window), and a job whose
estimated need (:func:`memory_need`) exceeds ``limit_mb`` is refused before decoding. Files are
checked with ``os.stat`` before anything opens them (a directory, FIFO or device is refused, so
nothing blocks), and absurd geometry (:func:`check_geometry`) is refused. Bad files raise
:class:`ClipError` (a ValueError) naming the file.
"""
from __future__ import annotations

import math
import os
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from pipelines.scheduler import WindowScheduler
from pipelines.types import Frame
from tdn.sampling import SEGMENT_LENGTH, parse_views, temporal_clip_indices
from tdn.transforms import PreprocessSpec, resize_short_side, resized_size

# WebM/Matroska has no frame index: OpenCV estimates the count from the duration
ESTIMATED_COUNT_CODECS = frozenset({"VP80", "VP90", "VP09"})
ProgressCallback = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
MAX_ASPECT = 4.0  # long side / short side; 32:9 panoramas (3.6) pass
MAX_UPSCALE = 4.0  # the short side may be enlarged at most this much to the model's resize_short
MAX_SOURCE_PIXELS = 7680 * 4320  # 8K UHD
DECODER_FRAMES = 8  # source-size frames counted for FFmpeg's decoder (references, threads) and the BGR copy


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
    timeline (None unless asked for); ``frames``/``fps``: what was read from the file; ``warning``:
    what the caller should be told (the file was only partly decodable), else None."""

    source: str
    scores: np.ndarray
    views: str
    frames: int
    fps: float
    windows: list[ClipWindow] | None
    warning: str | None = None  # e.g. fewer frames decoded than the container declares


# -- reading files ---------------------------------------------------------------------------
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_clip_file(path: str | Path) -> Path:
    """``path`` if it is a non-empty, readable regular file; otherwise an error naming it and what it is.

    The type comes from ``os.stat`` before anything opens the path, so a FIFO or device never blocks.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"video file not found: {path}") from None
    except OSError as exc:
        raise ClipError(f"{path} cannot be examined: {exc.strerror}") from None
    for is_kind, kind in _FILE_KINDS:
        if is_kind(mode):
            raise ClipError(f"{path} is {kind}, not a video file")
    if not stat.S_ISREG(mode):
        raise ClipError(f"{path} is not a regular file")
    if os.stat(path).st_size == 0:
        raise ClipError(f"{path} is empty (0 bytes)")
    try:
        with open(path, "rb"):  # a regular file: opening cannot block
            pass
    except OSError as exc:
        raise ClipError(f"{path} cannot be read: {exc.strerror}") from None
    return path


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(check_clip_file(path)))
    if not capture.isOpened():
        capture.release()
        raise ClipError(f"{path} is not a video OpenCV/FFmpeg can open")
    return capture


def check_geometry(path: str | Path, height: int, width: int, resize_short: int) -> None:
    """Refuse frame sizes no model input can sensibly come from (ClipError naming the file and the bound)."""
    if height <= 0 or width <= 0:
        raise ClipError(f"{path} has frames of {width}x{height} pixels")
    short, long = min(height, width), max(height, width)
    if long > MAX_ASPECT * short:
        raise ClipError(f"{path} is {width}x{height} pixels, an aspect ratio of {long / short:.1f}:1; "
                        f"at most {MAX_ASPECT:g}:1 is accepted")
    if resize_short > MAX_UPSCALE * short:
        raise ClipError(f"{path} is {width}x{height} pixels: its short side would be enlarged "
                        f"{resize_short / short:.1f}x to {resize_short} px; at most {MAX_UPSCALE:g}x is accepted "
                        f"(a short side of at least {math.ceil(resize_short / MAX_UPSCALE)} px)")
    if height * width > MAX_SOURCE_PIXELS:
        raise ClipError(f"{path} is {width}x{height} pixels ({height * width / 1e6:.1f} Mpx); "
                        f"at most {MAX_SOURCE_PIXELS / 1e6:.1f} Mpx (8K UHD) is accepted")


def memory_need(size: tuple[int, int], spec: PreprocessSpec, *, kept_frames: int, input_views: int,
                num_segments: int) -> int:
    """Bytes a clip job of ``(height, width)`` frames needs at most: the decoder's source-size frames,
    ``kept_frames`` frames at the resized size and ``input_views`` float32 ``(T, L, 3, S, S)`` model inputs."""
    height, width = size
    rh, rw = resized_size(height, width, spec.resize_short)
    return (DECODER_FRAMES * height * width * 3 + kept_frames * rh * rw * 3
            + input_views * num_segments * SEGMENT_LENGTH * 3 * spec.input_size ** 2 * 4)


def check_memory(path: str | Path, need: int, limit_mb: float | None, what: str) -> None:
    """ClipError naming the file, ``what`` and both figures when ``need`` bytes exceed ``limit_mb``."""
    if limit_mb is not None and need > limit_mb * 2**20:
        raise ClipError(f"{path}: {what} would need about {need / 2**20:,.0f} MB of decoded frames and model "
                        f"input; the limit is {limit_mb:g} MB (pipeline.clip_memory_mb)")


def fourcc(path: str | Path) -> str:
    """The video codec's FourCC as OpenCV's demuxer reports it (``""`` when unknown)."""
    capture = _open(Path(path))
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
    finally:
        capture.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").strip("\x00") if code else ""


def _frame_rate(capture: cv2.VideoCapture) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else 25.0


def _decoded_rgb(capture: cv2.VideoCapture, path: Path, resize_short: int | None) -> np.ndarray | None:
    """The frame just grabbed, as RGB, resized to ``resize_short`` (None: source size); None if it fails."""
    ok, image = capture.retrieve()
    if not ok:
        return None
    if resize_short is not None:
        check_geometry(path, *image.shape[:2], resize_short)  # the size may change inside a stream
        # (H, W, 3) -> (1, H, W, 3) -> resized (rh, rw, 3); per-channel, so BGR order can wait
        image = np.ascontiguousarray(resize_short_side(torch.from_numpy(image)[None], resize_short)[0].numpy())
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(path: Path, wanted: set[int], *, progress: ProgressCallback | None = None, expected: int = 0,
                stop_after_last: bool = False, resize_short: int | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Frames ``wanted`` (RGB) from one pass over the file, and the number of frames decoded.

    ``resize_short`` resizes each kept frame as it is decoded (see :mod:`tdn.transforms`), so
    memory does not grow with the source size. With ``stop_after_last`` the pass ends after the
    last wanted frame, so the count is only the file's length when it is not beyond that frame.
    ``expected`` scales the progress.
    """
    capture = _open(path)
    selected: dict[int, np.ndarray] = {}
    count = 0
    try:
        last = max(wanted, default=-1)
        while not (stop_after_last and count > last) and capture.grab():
            if count in wanted:
                image = _decoded_rgb(capture, path, resize_short)
                if image is None:
                    break
                selected[count] = image
            count += 1
            if progress is not None and count % 25 == 0:
                progress(min(0.9, 0.9 * count / max(expected, last + 1, 1)), f"reading frame {count}")
    finally:
        capture.release()
    return selected, count


def _probe(path: Path) -> tuple[int, float, tuple[int, int]]:
    """(frame count from the container, 0 if unknown; fps; (height, width), 0 if unknown)."""
    capture = _open(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = _frame_rate(capture)
        size = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        capture.release()
    return max(count, 0), fps, size


def truncation_warning(decoded: int, declared: int) -> str | None:
    """The warning for a file of which only ``decoded`` of the ``declared`` frames decode (None if all did)."""
    if 0 < decoded < declared:
        return (f"only {decoded} of {declared} frames could be decoded (the file is truncated or damaged); "
                f"the prediction uses those {decoded}")
    return None


@dataclass(frozen=True)
class ClipInfo:
    """What the container says before decoding: frame count (0 if unknown), frame rate and
    ``(height, width)`` (of the first frame when the container does not say)."""

    declared: int
    fps: float
    size: tuple[int, int]


def probe_clip(path: str | Path, resize_short: int) -> ClipInfo:
    """:class:`ClipInfo` of a video file whose geometry a model with ``resize_short`` can use (else ClipError)."""
    path = Path(path)
    declared, fps, size = _probe(path)
    if min(size) <= 0:  # the container does not say: the first frame does
        first, _ = read_frames(path, {0}, stop_after_last=True)
        if not first:
            raise ClipError(f"{path} has no decodable video frames")
        size = first[0].shape[:2]
    check_geometry(path, *size, resize_short)
    return ClipInfo(declared, fps, size)


def read_clip_frames(path: str | Path, info: ClipInfo, num_segments: int, clips: int, resize_short: int, *,
                     progress: ProgressCallback | None = None) -> tuple[dict[int, np.ndarray], int]:
    """The frames (index -> RGB resized to ``resize_short`` as decoded) that ``clips`` temporal clips
    of ``num_segments`` segments need, and the number of frames decoded: at most ``clips * T * L`` frames."""
    path = Path(path)
    declared = info.declared
    wanted = {i for idx in temporal_clip_indices(declared, num_segments, clips) for i in idx} if declared else set()
    frames, count = read_frames(path, wanted, progress=progress, expected=declared, resize_short=resize_short)
    if count != declared and count:  # the container's count was wrong or missing: select again with the true one
        wanted = {i for idx in temporal_clip_indices(count, num_segments, clips) for i in idx}
        frames, count = read_frames(path, wanted, progress=progress, expected=count, resize_short=resize_short)
    if not frames:
        raise ClipError(f"{path} has no decodable video frames")
    return frames, count


# -- prediction ------------------------------------------------------------------------------
def _clip_views(engine, path: Path, num_frames: int, frame_size: tuple[int, int], clips: int,
                positions: Sequence[float], frames: dict[int, np.ndarray] | None):
    """Per temporal clip, its views as float32 ``(crops, T, L, 3, S, S)``; DALI decodes itself
    when ``frames`` is None. One clip at a time bounds memory (10x3 at 224 px would be 0.7 GB)."""
    t = engine.num_segments
    for indices in temporal_clip_indices(num_frames, t, clips):
        if frames is None:
            decoded = engine.preprocessor.decode_segments(str(path), indices, frame_size, positions)
            yield decoded.unflatten(1, (t, SEGMENT_LENGTH))  # (crops, T*L, 3, S, S) -> (crops, T, L, 3, S, S)
        else:
            segments = [[frames[i] for i in indices[s * SEGMENT_LENGTH:(s + 1) * SEGMENT_LENGTH]] for s in range(t)]
            out = engine.preprocessor.segments(segments * len(positions), [p for p in positions for _ in range(t)])
            yield out.unflatten(0, (len(positions), t))  # (crops*T, L, 3, S, S) -> (crops, T, L, 3, S, S)


def rolling_frames(fps: float, window_seconds: float) -> int:
    """Frames the per-window path keeps: as far back as a window can reach (its span, a second of slack, 2 segments)."""
    return int(math.ceil((window_seconds + 1.0) * fps)) + 2 * SEGMENT_LENGTH


def clip_job_need(engine, info: ClipInfo, views: str, *, per_window: bool, window_seconds: float) -> int:
    """:func:`memory_need` of :func:`predict_clip` decoding with OpenCV: the views' frames and one
    temporal clip's inputs, plus (``per_window``) the rolling frames and a batch of windows."""
    clips, positions = parse_views(views)
    t, batch = engine.num_segments, engine.max_batch
    kept = clips * t * SEGMENT_LENGTH
    if per_window:
        kept += rolling_frames(info.fps, window_seconds) + batch * t * SEGMENT_LENGTH
    return memory_need(info.size, engine.preprocessor.spec, kept_frames=kept,
                       input_views=len(positions) + (batch if per_window else 0), num_segments=t)


@torch.inference_mode()
def predict_clip(engine, path: str | Path, *, views: str = "1x1", per_window: bool = False,
                 window_seconds: float = 2.0, max_gap_s: float = 1.0, limit_mb: float | None = None,
                 progress: ProgressCallback | None = None) -> ClipPrediction:
    """Score one video file with ``engine``'s model and preprocessor (see the module docstring);
    a job needing more than ``limit_mb`` (None: no limit) is refused before decoding."""
    path = Path(path)
    clips, positions = parse_views(views)
    model, t = engine.model, engine.num_segments
    spec = engine.preprocessor.spec
    if progress is not None:
        progress(0.0, f"opening {path.name}")
    info = probe_clip(path, spec.resize_short)
    what = f"{views} views x {t} segments of {info.size[1]}x{info.size[0]} frames" + (" per window" * per_window)
    check_memory(path, clip_job_need(engine, info, views, per_window=per_window, window_seconds=window_seconds),
                 limit_mb, what)
    num_frames, frames = info.declared, None
    # the backend decodes itself, at the source size: T * L frames per temporal clip
    dali_frames = t * SEGMENT_LENGTH * info.size[0] * info.size[1] * 3
    if engine.preprocessor.can_decode(str(path)) and (limit_mb is None or dali_frames <= limit_mb * 2**20):
        if num_frames == 0 or fourcc(path) in ESTIMATED_COUNT_CODECS:  # DALI needs the exact count
            num_frames = read_frames(path, set(), progress=progress, expected=num_frames)[1]
        if num_frames == 0:
            raise ClipError(f"{path} has no decodable video frames")
    else:
        frames, num_frames = read_clip_frames(path, info, t, clips, spec.resize_short, progress=progress)
    probabilities = []
    for views_of_clip in _clip_views(engine, path, num_frames, info.size, clips, positions, frames):
        for start in range(0, len(views_of_clip), engine.max_batch):
            with engine.model_lock:
                logits = model(views_of_clip[start:start + engine.max_batch])
            probabilities.append(torch.softmax(logits.float(), 1).cpu())
    del frames  # the per-window pass keeps its own rolling set
    scores = torch.cat(probabilities).mean(0).numpy()  # the mean over all clips x crops
    windows = None
    if per_window:
        windows = sliding_windows(engine, path, window_seconds=window_seconds, max_gap_s=max_gap_s,
                                  progress=progress, total=num_frames)
    if progress is not None:
        progress(1.0, "done")
    return ClipPrediction(source=str(path), scores=scores, views=views, frames=num_frames, fps=info.fps,
                          windows=windows, warning=truncation_warning(num_frames, info.declared))


def sliding_windows(engine, path: str | Path, *, window_seconds: float = 2.0, max_gap_s: float = 1.0,
                    progress: ProgressCallback | None = None, total: int = 0) -> list[ClipWindow]:
    """Every window the live scheduler would emit over the file played at its frame rate
    (frame ``i`` at ``i / fps`` s), scored in batches with the segment cache."""
    path = Path(path)
    capture = _open(path)
    fps = _frame_rate(capture)
    scheduler = WindowScheduler(num_segments=engine.num_segments, window_seconds=window_seconds, max_gap_s=max_gap_s)
    stream = f"clip {id(scheduler)} {path}"  # a private cache namespace, dropped at the end
    recent: deque[Frame] = deque(maxlen=rolling_frames(fps, window_seconds))
    resize_short = engine.preprocessor.spec.resize_short
    pending, results = [], []

    def flush():
        for result in engine.run_windows(pending):
            response = None if result.response is None else result.response.numpy().astype(np.float16)
            results.append(ClipWindow(time=result.window.newest_t, logits=result.logits, response=response))
        pending.clear()

    try:
        index = 0
        while capture.grab():
            image = _decoded_rgb(capture, path, resize_short)
            if image is None:
                break
            recent.append(Frame(image=image, t=index / fps, index=index))
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
