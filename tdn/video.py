"""Video files: checks, opening, probing, reading frames, writing, and the one frame-rate rule.

Files are checked with ``os.stat`` before anything opens them (a directory, FIFO or device is
refused, so nothing blocks), and absurd geometry (:func:`check_geometry`) is refused. Memory is
bounded by design (docs/limits.md): each frame can be resized to the model's short side as it is
decoded (:func:`tdn.transforms.resize_short_side`, so the result is the same as resizing later),
only wanted frames are kept, and a job whose estimated need (:func:`memory_need`) exceeds its
limit is refused before decoding. Bad files raise :class:`ClipError` (a ValueError) naming the file.

Frame rate: :func:`frame_rate` is the rule for every rate read from a container or stream - the
declared rate when it is finite and in ``(0, MAX_FPS]``, else ``DEFAULT_FPS``.
"""
from __future__ import annotations

import math
import os
import queue
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from tdn.sampling import SEGMENT_LENGTH, temporal_clip_indices
from tdn.transforms import PreprocessSpec, resize_short_side, resized_size

ProgressCallback = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
DEFAULT_FPS = 25.0  # the frame rate of a container or stream that declares none (or an absurd one)
MAX_FPS = 1000.0

MAX_ASPECT = 4.0  # long side / short side; 32:9 panoramas (3.6) pass
MAX_UPSCALE = 4.0  # the short side may be enlarged at most this much to the model's resize_short
MAX_SOURCE_PIXELS = 7680 * 4320  # 8K UHD
DECODER_FRAMES = 8  # source-size frames counted for FFmpeg's decoder (references, threads) and the BGR copy


class ClipError(ValueError):
    """A video file cannot be used; the message names the file and what is wrong."""


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


def open_video(path: str | Path) -> cv2.VideoCapture:
    """An opened OpenCV capture of a checked video file (:func:`check_clip_file`); ClipError if FFmpeg
    cannot open it."""
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
    capture = open_video(path)
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
    finally:
        capture.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").strip("\x00") if code else ""


def usable_frame_rate(fps: float | None) -> float:
    """The one frame-rate rule: a declared ``fps`` if it is finite and in ``(0, MAX_FPS]``, else ``DEFAULT_FPS``."""
    return fps if fps is not None and math.isfinite(fps) and 0 < fps <= MAX_FPS else DEFAULT_FPS


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The frame rate an OpenCV ``capture`` declares, by :func:`usable_frame_rate`."""
    return usable_frame_rate(capture.get(cv2.CAP_PROP_FPS))


def retrieve_rgb(capture: cv2.VideoCapture, path: str | Path, resize_short: int | None) -> np.ndarray | None:
    """The frame just grabbed, as RGB, resized to ``resize_short`` (None: source size); None if it fails."""
    ok, image = capture.retrieve()
    return bgr_to_model_rgb(image, path, resize_short) if ok else None


def bgr_to_model_rgb(image: np.ndarray, path: str | Path, resize_short: int | None) -> np.ndarray:
    """A decoded BGR frame as RGB resized to ``resize_short`` (None: source size); ClipError for absurd geometry."""
    if resize_short is not None:
        check_geometry(path, *image.shape[:2], resize_short)  # the size may change inside a stream
        # (H, W, 3) -> (1, H, W, 3) -> resized (rh, rw, 3); per-channel, so BGR order can wait
        image = np.ascontiguousarray(resize_short_side(torch.from_numpy(image)[None], resize_short)[0].numpy())
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(path: Path, wanted: set[int], *, progress: ProgressCallback | None = None, expected: int = 0,
                stop_after_last: bool = False, resize_short: int | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Frames ``wanted`` (RGB) from one pass over the file, and the number of frames decoded.

    ``resize_short`` resizes each kept frame as it is decoded (see the module docstring), so
    memory does not grow with the source size. With ``stop_after_last`` the pass ends after the
    last wanted frame, so the count is only the file's length when it is not beyond that frame.
    ``expected`` scales the progress.
    """
    capture = open_video(path)
    selected: dict[int, np.ndarray] = {}
    count = 0
    try:
        last = max(wanted, default=-1)
        while not (stop_after_last and count > last) and capture.grab():
            if count in wanted:
                image = retrieve_rgb(capture, path, resize_short)
                if image is None:
                    break
                selected[count] = image
            count += 1
            if progress is not None and count % 25 == 0:
                progress(min(0.9, 0.9 * count / max(expected, last + 1, 1)), f"reading frame {count}")
    finally:
        capture.release()
    return selected, count


@dataclass(frozen=True)
class ClipInfo:
    """What a video file says before decoding: frame count (0 if unknown), frame rate
    (:func:`frame_rate`) and ``(height, width)`` (0 if unknown)."""

    declared: int
    fps: float
    size: tuple[int, int]


def probe_video(path: str | Path) -> ClipInfo:
    """What the container of a video file says, without decoding; 0 for what it does not say."""
    capture = open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = frame_rate(capture)
        size = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        capture.release()
    return ClipInfo(max(count, 0), fps, size)


def probe_clip(path: str | Path, resize_short: int) -> ClipInfo:
    """:class:`ClipInfo` of a video file whose geometry a model with ``resize_short`` can use (else ClipError);
    the size from the first frame when the container does not say."""
    path = Path(path)
    info = probe_video(path)
    if min(info.size) <= 0:  # the container does not say: the first frame does
        first, _ = read_frames(path, {0}, stop_after_last=True)
        if not first:
            raise ClipError(f"{path} has no decodable video frames")
        info = replace(info, size=first[0].shape[:2])
    check_geometry(path, *info.size, resize_short)
    return info


def clip_frame_indices(num_frames: int, num_segments: int, clips: int, fps: float | None = None,
                       step_s: float = 0.0) -> set[int]:
    """Every frame index that ``clips`` temporal clips of ``num_segments`` segments of a ``num_frames``-frame
    file use (:func:`tdn.sampling.temporal_clip_indices`); none for an unknown (0) count."""
    if not num_frames:
        return set()
    return {i for idx in temporal_clip_indices(num_frames, num_segments, clips, fps=fps, step_s=step_s) for i in idx}


def read_clip_frames(path: str | Path, info: ClipInfo, num_segments: int, clips: int, resize_short: int, *,
                     step_s: float = 0.0, progress: ProgressCallback | None = None) -> tuple[dict[int, np.ndarray], int]:
    """The frames (index -> RGB resized to ``resize_short`` as decoded) that ``clips`` temporal clips
    of ``num_segments`` segments need, and the number of frames decoded: at most ``clips * T * L`` frames."""
    path = Path(path)
    declared = info.declared
    wanted = clip_frame_indices(declared, num_segments, clips, info.fps, step_s)
    frames, count = read_frames(path, wanted, progress=progress, expected=declared, resize_short=resize_short)
    if count != declared and count:  # the container's count was wrong or missing: select again with the true one
        frames, count = read_frames(path, clip_frame_indices(count, num_segments, clips, info.fps, step_s),
                                    progress=progress,
                                    expected=count, resize_short=resize_short)
    if not frames:
        raise ClipError(f"{path} has no decodable video frames")
    return frames, count


def open_writer(path: str | Path, codec: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An opened OpenCV writer of ``codec`` (a FourCC) video at ``fps`` for ``(width, height)`` frames;
    ValueError when OpenCV cannot write that there."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        writer.release()
        raise ValueError(f"OpenCV cannot write {codec} video to {path}")
    return writer


class BrowserVideoWriter:
    """H.264 MP4 (yuv420p, ``faststart``) that every browser plays, encoded by the system ``ffmpeg``
    with x264's ``ultrafast`` preset in a child process; ``write`` takes uint8 RGB frames of ``size``
    ``(width, height)``, converts them to YUV 4:2:0 (a copy: the caller may reuse its array) and queues
    at most ``QUEUE_FRAMES`` of them for a thread that feeds the encoder, so the caller goes on (scoring
    the next windows) while ffmpeg encodes instead of waiting on the pipe (a blocked pipe took 40 % of a clip job on 2 cores;
    OpenCV's own VP8 encoder took far more: BENCHMARKS.md)."""

    QUEUE_FRAMES = 32  # 8 MB at 480x360

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise ValueError("the system ffmpeg is needed to write browser video (scripts/install-system-deps.sh)")
        width, height = size
        if width % 2 or height % 2:
            raise ValueError(f"H.264 in yuv420p needs an even width and height, got {width}x{height}")
        self.path, self.size = Path(path), (width, height)
        self._process = subprocess.Popen(
            [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
             "-r", f"{fps:.6g}", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
             "-movflags", "+faststart", "-f", "mp4", str(self.path)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._pipe_closed = threading.Event()  # ffmpeg stopped reading (it failed, or was killed)
        self._feeder = threading.Thread(target=self._feed, name=f"encode {self.path.name}", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while (yuv := self._queue.get()) is not None:
            if self._pipe_closed.is_set():
                continue  # drain, so that a writer blocked on a full queue is let go
            try:
                self._process.stdin.write(yuv.data)
            except (BrokenPipeError, ValueError):  # ffmpeg exited, or discard() closed the pipe
                self._pipe_closed.set()

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.size[1], self.size[0], 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected uint8 {self.size[0]}x{self.size[1]} RGB frames, got {rgb.dtype} {rgb.shape}")
        if self._pipe_closed.is_set():
            self.release()  # raises with ffmpeg's reason
        # BT.601 limited range, as ffmpeg's own rgb24 -> yuv420p, at a tenth of its cost
        self._queue.put(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))

    def _stop_feeding(self) -> None:
        if self._feeder.is_alive():
            self._queue.put(None)
            self._feeder.join()

    def discard(self) -> None:
        """Stop encoding and remove the partial file (the job failed)."""
        self._process.kill()
        self._pipe_closed.set()
        self._stop_feeding()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Finish the file; ValueError with ffmpeg's message if encoding failed."""
        self._stop_feeding()
        if self._process.stdin and not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass
        error = self._process.stderr.read().decode(errors="replace").strip() if self._process.stderr else ""
        if self._process.wait() != 0:
            reason = error or f"exit code {self._process.returncode}"
            raise ValueError(f"ffmpeg could not write {self.path.name}: {reason}")
        if self._pipe_closed.is_set():
            raise ValueError(f"ffmpeg stopped reading frames for {self.path.name} before the end")


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 ``(N, H, W, 3)`` RGB frames as an mp4 (MPEG-4 part 2) file, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = open_writer(path, "mp4v", fps, (w, h))
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def write_h264(path: str | Path, frames: np.ndarray, fps: int, *, crf: int = 23) -> None:
    """Write uint8 ``(N, H, W, 3)`` RGB frames (even H and W) as H.264 in mp4, as a webcam stream
    is coded: no B-frames (zero latency), quality ``crf`` (18 good .. 36 blocky), creating its folder."""
    import av  # FFmpeg's libx264; imported here so reading videos does not need it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode(None))
