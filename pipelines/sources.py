"""Frame sources: local cameras, RTSP/HTTP streams, video files, and frames pushed from outside.

Every source owns one bounded :class:`~pipelines.buffer.FrameBuffer` and (except the push
source) one capture thread that reads continuously, converts each frame to RGB once (after an
optional downscale to ``max_side``), stamps it with its capture time and appends it to the
buffer. Each source has a :class:`~pipelines.types.SourceStatus`:

- camera / stream: ``connecting`` -> ``live`` (first frame) -> ``reconnecting`` -> ``live`` -> ...;
  opening is retried with exponential backoff until ``open_timeout_s`` has passed without a
  frame, then ``failed``; a stream lost after it was live is retried for ever
  (``reconnect_initial_s`` doubling up to ``reconnect_max_s``; the delay only starts afresh after
  a session that lasted ``reconnect_max_s``) until :meth:`Source.stop`.
- file: ``live`` -> ``ended`` at the end of the file (never, when looped); a file that cannot
  be decoded raises :class:`~pipelines.types.SourceError` from :meth:`Source.start`.
- push: ``connecting`` until the first frame, ``live``, ``ended`` after :meth:`PushSource.end`.

Names, status details, log lines and errors show sources through
:func:`~pipelines.masking.mask_credentials` only.

Example::

    with open_source("rtsp://user:pw@cam/stream", config=cfg.pipeline) as src:
        src.wait_for_state({"live", "failed"}, timeout=cfg.pipeline.open_timeout_s + 1)
        frames = src.buffer.snapshot()
"""
from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable, Collection

import cv2
import numpy as np

from pipelines.buffer import FrameBuffer
from pipelines.masking import mask_credentials
from pipelines.types import FINAL_STATES, Frame, SourceError, SourceStats, SourceStatus
from tdn.config import PipelineConfig
from tdn.video import frame_rate

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
StatusCallback = Callable[[str, SourceStatus], None]  # (stream id, new status), from the capture thread
_FPS_WINDOW = 32  # capture times kept for the rate estimate
_BACKLOG_MAX_S = 2.0  # most video (s at the nominal rate) skipped as backlog after a (re)connect


def prepare_image(image: np.ndarray, *, bgr: bool, max_side: int | None) -> np.ndarray:
    """A captured or pushed image as a fresh uint8 ``(H, W, 3)`` RGB array, its longer side
    downscaled to ``max_side`` (aspect kept; never upscaled). ``bgr``: OpenCV channel order.
    A 4-channel image loses its alpha channel."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {tuple(image.shape)}")
    height, width = image.shape[:2]
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    code = {(True, 3): cv2.COLOR_BGR2RGB, (True, 4): cv2.COLOR_BGRA2RGB, (False, 4): cv2.COLOR_RGBA2RGB}
    conversion = code.get((bgr, image.shape[2]))
    return cv2.cvtColor(image, conversion) if conversion is not None else image.copy()


class Source:
    """What every source shares: name (masked), stream id, buffer, status, stats, lifecycle.

    ``name`` describes the source for people (``"camera 0"``, a masked URL, a file path);
    ``stream_id`` keys its windows and JSON events (default: ``name``). Use as a context
    manager or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, name: str, *, stream_id: str | None = None, buffer: FrameBuffer | None = None,
                 max_side: int | None = None, on_status: StatusCallback | None = None):
        self.name = mask_credentials(name)
        self.stream_id = mask_credentials(stream_id) if stream_id is not None else self.name
        self.buffer = buffer if buffer is not None else FrameBuffer()
        self.max_side = max_side
        self._on_status = on_status
        self._status = SourceStatus("connecting", f"opening {self.name}", time.time())
        self._status_changed = threading.Condition()
        self._deliver_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._frames_read = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_t = -math.inf
        self._recent_t: deque[float] = deque(maxlen=_FPS_WINDOW)
        self._stop_timeout_s = 10.0  # a blocked open/read returns within this

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> Source:
        """Start the capture thread (returns at once; watch :attr:`status`)."""
        if self._thread is not None:
            raise RuntimeError(f"source {self.name} already started")
        self._thread = threading.Thread(target=self._run_guarded, name=f"capture {self.stream_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading, join the capture thread (it releases its capture) and mark the source ``ended``.
        ``timeout``: longest wait for the thread (default: long enough for a pending open or read)."""
        self._stop_event.set()
        timeout = self._stop_timeout_s if timeout is None else timeout
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("capture thread of %s did not stop within %.1f s", self.name, timeout)
        if self.status.state not in FINAL_STATES:
            self._set_status("ended", "stopped")
        self.buffer.close()

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    # ---- status and stats -------------------------------------------------------------------
    @property
    def status(self) -> SourceStatus:
        with self._status_changed:
            return self._status

    def wait_for_state(self, states: Collection[str], timeout: float) -> SourceStatus:
        """Wait up to ``timeout`` s until the state is one of ``states``; returns the status then."""
        with self._status_changed:
            self._status_changed.wait_for(lambda: self._status.state in states, timeout)
            return self._status

    def stats(self) -> SourceStats:
        with self._deliver_lock:
            recent = list(self._recent_t)
        span = recent[-1] - recent[0] if len(recent) > 1 else 0.0
        fps = (len(recent) - 1) / span if span > 0 else 0.0
        return SourceStats(frames_read=self._frames_read, dropped=self._dropped, reconnects=self._reconnects, fps=fps)

    def _set_status(self, state: str, detail: str) -> None:
        status = SourceStatus(state, mask_credentials(detail), time.time())
        with self._status_changed:
            if self._status.state in FINAL_STATES:
                return  # ended and failed are final
            changed = status.state != self._status.state
            self._status = status
            self._status_changed.notify_all()
        if changed:
            log.info("source %s: %s (%s)", self.stream_id, status.state, status.detail)
            if self._on_status is not None:
                self._on_status(self.stream_id, status)

    # ---- frames -------------------------------------------------------------------------------
    def _deliver(self, image: np.ndarray, t: float, *, bgr: bool) -> Frame | None:
        """Convert, stamp and buffer one frame; a frame not newer than the last one is dropped."""
        rgb = prepare_image(image, bgr=bgr, max_side=self.max_side)
        rgb.flags.writeable = False  # frames are shared by windows and caches
        with self._deliver_lock:
            if t <= self._last_t:
                self._dropped += 1
                return None
            frame = Frame(image=rgb, t=t, index=self._frames_read)
            self._frames_read += 1
            self._last_t = t
            self._recent_t.append(t)
            self.buffer.append(frame)
        return frame

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug or an unexpected OpenCV error: report it, never die silently
            log.error("capture thread of %s crashed:\n%s", self.name,
                      mask_credentials("".join(traceback.format_exception(exc))))
            self._set_status("failed", f"{self.name}: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        raise NotImplementedError


def _open_capture(target: int | str, *, open_timeout_s: float, read_timeout_s: float) -> cv2.VideoCapture | None:
    """An opened ``cv2.VideoCapture`` or None. URLs and files use the FFmpeg backend with open/read
    timeouts; camera indices use OpenCV's default backend (V4L2 on Linux)."""
    if isinstance(target, int):
        cap = cv2.VideoCapture(target)
    else:
        cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(1, int(open_timeout_s * 1000)),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, max(1, int(read_timeout_s * 1000)),
        ])
    if cap.isOpened():
        return cap
    cap.release()
    return None


class LiveSource(Source):
    """A camera (``target`` an int index) or a network stream (``target`` a URL), reconnecting by itself.

    Frames are stamped with the wall-clock time at which OpenCV returned them; the backlog that
    FFmpeg buffers while a stream opens (about a second of frames, returned in a burst) is
    skipped after each (re)connect and counted in ``stats().dropped``.
    """

    def __init__(self, target: int | str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 5.0,
                 reconnect_initial_s: float = 0.5, reconnect_max_s: float = 8.0, **kwargs):
        name = f"camera {target}" if isinstance(target, int) else target
        super().__init__(name, **kwargs)
        if open_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError(f"open_timeout_s and read_timeout_s must be > 0, got {open_timeout_s}, {read_timeout_s}")
        if not 0 < reconnect_initial_s <= reconnect_max_s:
            raise ValueError("expected 0 < reconnect_initial_s <= reconnect_max_s, "
                             f"got {reconnect_initial_s} and {reconnect_max_s}")
        self._target = target
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self._stop_timeout_s = max(open_timeout_s, read_timeout_s) + 2.0

    def _run(self) -> None:
        open_deadline = time.monotonic() + self.open_timeout_s
        delay, wait_first = self.reconnect_initial_s, False
        while not self.stopped:
            was_live = self._frames_read > 0
            cap, delay = self._connect(deadline=None if was_live else open_deadline, delay=delay, wait_first=wait_first)
            if cap is None:
                if not self.stopped:
                    self._set_status("failed", f"no frames from {self.name} within {self.open_timeout_s:g} s "
                                               "(unreachable, refused, wrong path or credentials, or not a video)")
                return
            if was_live:
                self._reconnects += 1
            opened_at = time.monotonic()
            self._read_until_lost(cap)
            if self.stopped:
                return
            if time.monotonic() - opened_at >= self.reconnect_max_s:
                delay = self.reconnect_initial_s  # it ran well for a while: back off afresh
            if self._frames_read > 0:
                self._set_status("reconnecting", f"lost {self.name}; retrying every {self.reconnect_initial_s:g} s "
                                                 f"doubling up to {self.reconnect_max_s:g} s")
            wait_first = True  # never hammer a server that accepts and then drops the stream

    def _connect(self, *, deadline: float | None, delay: float, wait_first: bool
                 ) -> tuple[cv2.VideoCapture | None, float]:
        """Open, waiting ``delay`` s (doubling up to ``reconnect_max_s``) between attempts and, when
        ``wait_first``, before the first. Gives up at ``deadline`` (monotonic; None: only when stopped).
        Returns the capture (None on giving up) and the next delay."""
        wait = wait_first
        while not self.stopped:
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            if wait:
                if remaining <= 0 or self._stop_event.wait(min(delay, remaining)):
                    return None, delay
                delay = min(2 * delay, self.reconnect_max_s)
                remaining = math.inf if deadline is None else deadline - time.monotonic()
            wait = True
            cap = _open_capture(self._target, open_timeout_s=min(self.open_timeout_s, max(remaining, 0.001)),
                                read_timeout_s=self.read_timeout_s)
            if cap is not None:
                if not self.stopped:
                    return cap, delay
                cap.release()
        return None, delay

    def _read_until_lost(self, cap: cv2.VideoCapture) -> None:
        """Deliver frames until the stream ends, fails or stalls for ``read_timeout_s``; ``live`` from the first frame."""
        try:
            if not self._skip_backlog(cap):
                return
            while not self.stopped:
                ok, image = cap.read()
                if not ok or image is None:
                    return
                self._deliver_live(image)
        finally:
            cap.release()

    def _deliver_live(self, image: np.ndarray) -> None:
        self._deliver(image, max(time.time(), self._last_t + 1e-6), bgr=True)
        if self.status.state != "live":
            self._set_status("live", f"reading {self.name}")

    def _skip_backlog(self, cap: cv2.VideoCapture) -> bool:
        """Drop the frames FFmpeg buffered while the stream was opening: they come back all at once,
        up to a second old, and would all be stamped "now". Grabs until one has to wait for a live
        frame (which is kept), skipping at most ``_BACKLOG_MAX_S`` of video at the stream's nominal
        rate. False if the stream is lost meanwhile."""
        fps = frame_rate(cap)
        for _ in range(round(_BACKLOG_MAX_S * fps)):
            if self.stopped:
                return True
            started = time.monotonic()
            if not cap.grab():
                return False
            if time.monotonic() - started >= 0.25 / fps:  # this grab waited: the frame is live
                ok, image = cap.retrieve()
                if ok and image is not None:
                    self._deliver_live(image)
                return True
            with self._deliver_lock:
                self._dropped += 1
        return True


class FileSource(Source):
    """A video file, optionally paced in real time by its timestamps and optionally looped.

    Frame times are synthetic: ``t = start + media time`` where ``start`` is the wall-clock time of
    the first frame and media time is the frame's presentation time in the file (plus the
    file's duration per completed loop). Paced (``realtime=True``), each frame is buffered no
    earlier than its ``t``; a reader slower than real time delivers late and never skips, so the
    lag shows in latency. Unpaced, frames are read as fast as they decode.
    """

    def __init__(self, path: str | Path, *, realtime: bool = True, loop: bool = False, **kwargs):
        path = Path(path)
        super().__init__(str(path), **kwargs)
        if not path.is_file():
            raise FileNotFoundError(f"video file not found: {self.name}")
        self.path = path
        self.realtime = realtime
        self.loop = loop
        self._opened: tuple[cv2.VideoCapture, np.ndarray] | None = None  # handed from start() to the thread
        self.fps = 0.0

    def start(self) -> Source:
        """Open the file and decode its first frame (raises :class:`SourceError` if either fails),
        then start reading."""
        if self._thread is not None:
            raise RuntimeError(f"source {self.name} already started")
        self._opened = self._open_checked()
        return super().start()

    def _open_checked(self) -> tuple[cv2.VideoCapture, np.ndarray]:
        """The opened capture and its first frame; on failure the source is ``failed`` and SourceError raised."""
        cap = _open_capture(str(self.path), open_timeout_s=10.0, read_timeout_s=10.0)
        if cap is None:
            self._fail(f"cannot decode {self.name}: not a video file OpenCV/FFmpeg can read")
        ok, image = cap.read()
        if not ok or image is None:
            cap.release()
            self._fail(f"cannot decode {self.name}: no decodable frames (empty, truncated or corrupt)")
        self.fps = frame_rate(cap)
        return cap, image

    def _fail(self, detail: str) -> None:
        self._set_status("failed", detail)
        raise SourceError(self.status.detail)

    def _run(self) -> None:
        (cap, image), self._opened = self._opened, None
        start = None  # wall-clock time of media time 0 of the current pass
        media_t = -math.inf
        try:
            while not self.stopped:
                if image is None:
                    ok, image = cap.read()
                    if not ok or image is None:
                        if not self.loop:
                            self._set_status("ended", f"end of {self.name} after {self._frames_read} frames")
                            return
                        cap.release()
                        cap, image = self._open_checked()
                        start += media_t + 1.0 / self.fps  # the next pass continues the timeline
                        media_t = -math.inf
                media_t = self._media_time(cap, media_t)
                if start is None:
                    start = time.time() - media_t
                    self._set_status("live", f"playing {self.name}" + (" in real time" if self.realtime else ""))
                t = start + media_t
                if self.realtime and t > time.time() and self._stop_event.wait(t - time.time()):
                    return
                self._deliver(image, t, bgr=True)
                image = None
        finally:
            cap.release()

    def _media_time(self, cap: cv2.VideoCapture, previous: float) -> float:
        """Presentation time (s) of the frame just read; one frame interval after ``previous`` when
        the container's timestamps are missing or do not increase."""
        pos = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if previous == -math.inf:
            return pos if math.isfinite(pos) and pos >= 0 else 0.0
        return pos if math.isfinite(pos) and pos > previous else previous + 1.0 / self.fps


class PushSource(Source):
    """Frames pushed from outside (e.g. the browser webcam in the app); no thread of its own.

    ``push(image)`` stamps the frame with ``time.time()`` (or the ``t`` given) and buffers it; a
    frame not newer than the previous one is dropped and counted.
    """

    def __init__(self, stream_id: str = "push", **kwargs):
        super().__init__(stream_id, stream_id=stream_id, **kwargs)
        self._set_status("connecting", "waiting for the first frame")

    def start(self) -> Source:
        return self  # frames arrive through push()

    def push(self, image: np.ndarray, t: float | None = None, *, bgr: bool = False) -> Frame | None:
        """Buffer one RGB (or, with ``bgr=True``, BGR) uint8 image; returns the frame, or None if dropped."""
        if self.status.state in FINAL_STATES:
            raise SourceError(f"push source {self.name} has {self.status.state}; create a new one")
        frame = self._deliver(image, time.time() if t is None else t, bgr=bgr)
        if frame is not None and self.status.state == "connecting":
            self._set_status("live", "receiving frames")
        return frame

    def end(self, detail: str = "no more frames") -> None:
        self._set_status("ended", detail)
        self.buffer.close()


def describe_source(spec: str | int) -> str:
    """How a source spec is shown to people (credentials masked)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return f"camera {int(spec)}"
    return mask_credentials(str(spec))


def open_source(spec: str | int, *, config: PipelineConfig | None = None, stream_id: str | None = None,
                on_status: StatusCallback | None = None, realtime: bool | None = None,
                loop: bool | None = None) -> Source:
    """A (not yet started) source for ``spec``: a camera index (``0`` or ``"0"``), a URL
    (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http://``, ``https://``) or a video file path.

    ``config``: the pipeline settings (defaults when None); ``realtime`` and
    ``loop`` override its ``file_realtime`` / ``file_loop`` for files. Raises ValueError for an
    unsupported URL scheme and FileNotFoundError for a missing file, naming the (masked) source.
    """
    config = config if config is not None else PipelineConfig()
    common = dict(stream_id=stream_id, on_status=on_status, max_side=config.capture_max_side or None,
                  buffer=FrameBuffer(max_seconds=config.buffer_seconds, max_frames=config.buffer_max_frames))
    live = dict(open_timeout_s=config.open_timeout_s, read_timeout_s=config.read_timeout_s,
                reconnect_initial_s=config.reconnect_initial_s, reconnect_max_s=config.reconnect_max_s)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return LiveSource(int(spec), **live, **common)
    spec = str(spec)
    scheme, sep, _ = spec.partition("://")
    if sep:
        if scheme.lower() not in STREAM_SCHEMES:
            raise ValueError(f"unsupported source {mask_credentials(spec)}: expected a camera index, a video file "
                             f"or a URL starting with {', '.join(s + '://' for s in STREAM_SCHEMES)}")
        return LiveSource(spec, **live, **common)
    return FileSource(spec, realtime=config.file_realtime if realtime is None else realtime,
                      loop=config.file_loop if loop is None else loop, **common)
