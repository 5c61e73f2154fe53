"""Frame sources: local cameras, RTSP/HTTP streams, video files, and frames pushed from outside.

Every source owns one bounded :class:`~pipelines.buffer.FrameBuffer` and (except the push
source) one capture thread that reads continuously, converts each frame to RGB once (after an
optional downscale to ``max_side``), stamps it with its capture time and appends it to the
buffer. Each source has a :class:`~pipelines.types.SourceStatus`:

- camera / stream: ``connecting`` -> ``live`` (first frame) -> ``reconnecting`` -> ``live`` -> ...;
  opening is retried with exponential backoff until ``open_timeout_s`` has passed without a
  frame, then ``failed`` with the reason of the last attempt (at once for what retrying cannot
  mend: 401/403, a refused connection, an HTTP answer that is not a video); a stream lost
  after it was live is retried for ever (``reconnect_initial_s`` doubling up to
  ``reconnect_max_s``; the delay only starts afresh after a session that lasted
  ``reconnect_max_s``) until :meth:`Source.stop`. Streams are read with PyAV (FFmpeg with
  open/read timeouts), cameras with OpenCV; every open runs on a thread of its own that the
  capture thread stops waiting for at the deadline, so no open can block another source, a
  clip decode or :meth:`Source.stop`.
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
import re
import socket
import threading
import time
import traceback
import urllib.request
from collections import deque
from pathlib import Path
from typing import Callable, Collection, Sequence
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from pipelines.buffer import FrameBuffer
from pipelines.masking import mask_credentials
from pipelines.types import FINAL_STATES, Frame, SourceError, SourceStats, SourceStatus
from tdn.config import PipelineConfig
from tdn.video import frame_rate, usable_frame_rate

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
StatusCallback = Callable[[str, SourceStatus], None]  # (stream id, new status), from the capture thread
_FPS_WINDOW = 32  # capture times kept for the rate estimate
_BACKLOG_MAX_S = 2.0  # most video (s at the nominal rate) skipped as backlog after a (re)connect
MAX_CAMERA_INDEX = 63  # OpenCV reads indices of 100 and more as a backend id plus an index
MAX_URL_LENGTH = 4096  # FFmpeg's own limit (MAX_URL_SIZE); longer URLs would be cut short
_CAMERA_SPEC = re.compile(r"[+-]?[0-9]+")
STALE_AFTER_S = 1.0  # a rate silent for longer than this counts the silence too (it decays)
_PROBE_TIMEOUT_S = 2.0  # the look at an HTTP answer FFmpeg could not read as video


def recent_rate(times: Sequence[float], silent_s: float) -> float:
    """Events per second over the ascending ``times`` (s) of the recent events; once no event has
    come for ``silent_s`` > :data:`STALE_AFTER_S` seconds (by the wall clock: ``times`` may be
    a file's or a pusher's own), the silence counts too, so the rate falls towards 0 when events
    stop instead of repeating the last figure."""
    if len(times) < 2:
        return 0.0
    span = times[-1] - times[0] + (silent_s if silent_s > STALE_AFTER_S else 0.0)
    return (len(times) - 1) / span if span > 0 else 0.0


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
        self._outages = 0
        self._outage_total_s = 0.0  # outages that ended
        self._outage_from: float | None = None  # newest frame before the current outage (unix s)
        self._delivered_at = -math.inf  # when the newest frame was delivered (time.monotonic)
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
            recent, silent_s = list(self._recent_t), time.monotonic() - self._delivered_at
            current = None if self._outage_from is None else max(0.0, time.time() - self._outage_from)
            outages, outage_s = self._outages, self._outage_total_s + (current or 0.0)
        return SourceStats(frames_read=self._frames_read, dropped=self._dropped, reconnects=self._reconnects,
                           fps=recent_rate(recent, silent_s), outages=outages, outage_s=outage_s,
                           current_outage_s=current)

    def _outage_began(self) -> None:
        """Frames stopped coming (the stream was lost): an outage since the newest frame."""
        with self._deliver_lock:
            if self._outage_from is None:
                self._outages += 1
                self._outage_from = self._last_t

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
            if self._outage_from is not None:  # the first frame after an outage ends it
                self._outage_total_s += max(0.0, t - self._outage_from)
                self._outage_from = None
            self._last_t = t
            self._recent_t.append(t)
            self._delivered_at = time.monotonic()
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


def _open_capture(path: str) -> cv2.VideoCapture | None:
    """An opened ``cv2.VideoCapture`` of a video file (FFmpeg backend, with open/read timeouts) or None."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10_000])
    if cap.isOpened():
        return cap
    cap.release()
    return None


class _OpenFailed(Exception):
    """One open attempt failed; the message says why, for people. ``permanent``: retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def _timed_out(timeout_s: float) -> _OpenFailed:
    return _OpenFailed(f"timed out: no valid answer within {round(timeout_s, 1):g} s")


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def _http_content_type(url: str) -> str | None:
    """The ``Content-Type`` an HTTP(S) ``url`` answers with (credentials left out of the request),
    None when it cannot be had within :data:`_PROBE_TIMEOUT_S`."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    netloc = parts.netloc.rpartition("@")[2]
    try:
        with urllib.request.urlopen(parts._replace(netloc=netloc).geturl(), timeout=_PROBE_TIMEOUT_S) as answer:
            kind = answer.headers.get_content_type()
    except (OSError, ValueError):
        return None
    return kind


def _open_failure(exc: av.FFmpegError, url: str, *, timed_out: bool, timeout_s: float) -> _OpenFailed:
    """What FFmpeg's error from opening ``url`` means (``timed_out``: the open used up ``timeout_s``).
    Permanent (no retry while the source never was live): 401, 403, a refused connection, an HTTP
    answer of a text type (a web page, JSON)."""
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        return _OpenFailed("401 unauthorized: wrong or missing user name or password", permanent=True)
    if isinstance(exc, av.error.HTTPForbiddenError):
        return _OpenFailed("403 forbidden: the server refuses this user", permanent=True)
    if isinstance(exc, av.error.HTTPNotFoundError):
        return _OpenFailed("404 not found: wrong path")
    if timed_out or isinstance(exc, (av.error.ExitError, TimeoutError)):
        return _timed_out(timeout_s)
    if isinstance(exc, ConnectionRefusedError):
        return _OpenFailed("connection refused: nothing listens on that port", permanent=True)
    if isinstance(exc, av.error.InvalidDataError):
        kind = _http_content_type(url)
        if kind is not None and (kind.startswith("text/") or kind in ("application/json", "application/xml")):
            return _OpenFailed(f"not a video: the server answers with {kind}", permanent=True)
        return _OpenFailed("not a video: the server's answer is invalid data for FFmpeg")
    if isinstance(exc, (EOFError, ConnectionResetError)):
        return _OpenFailed("the server closed the connection without sending video")
    host = urlsplit(url).hostname
    if host and not _resolves(host):
        return _OpenFailed(f"cannot resolve host name {host!r}")
    return _OpenFailed(exc.strerror or type(exc).__name__)


class _CameraCapture:
    """A local camera through OpenCV's default backend (V4L2 on Linux): BGR frames."""

    bgr = True
    lost_reason = "the camera stopped delivering frames"

    def __init__(self, index: int):
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise _OpenFailed(f"cannot open camera {index}: no such device, busy, or no permission")
        self.fps = self._cap.get(cv2.CAP_PROP_FPS)

    def grab(self) -> bool:
        return self._cap.grab()

    def retrieve(self) -> np.ndarray | None:
        ok, image = self._cap.retrieve()
        return image if ok else None

    def close(self) -> None:
        self._cap.release()


class _StreamCapture:
    """A network stream through PyAV (its own FFmpeg, sharing no lock with OpenCV): RGB frames.

    Opening (connect, then probe) gives up after ``timeout_s`` per phase and each packet read after
    ``read_timeout_s`` (FFmpeg's interrupt callback); RTSP runs over TCP. A packet that does not
    decode is skipped; ``grab`` fails when the stream ends, fails or decodes no frame for
    ``read_timeout_s``, with ``lost_reason`` saying which.
    """

    bgr = False

    def __init__(self, url: str, *, timeout_s: float, read_timeout_s: float):
        options = {"rtsp_transport": "tcp"} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
        started = time.monotonic()
        try:
            self._container = av.open(url, timeout=(timeout_s, read_timeout_s), options=options)
        except av.FFmpegError as exc:
            raise _open_failure(exc, url, timed_out=time.monotonic() - started >= timeout_s,
                                timeout_s=timeout_s) from None
        if not self._container.streams.video:
            self._container.close()
            raise _OpenFailed("no video in the stream (audio or data only)")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.base_rate
        self.fps = float(rate) if rate else 0.0
        self._packets = self._container.demux(stream)
        self._decoded: deque[av.VideoFrame] = deque()
        self._frame: av.VideoFrame | None = None
        self._read_timeout_s = read_timeout_s
        self.lost_reason = ""

    def grab(self) -> bool:
        deadline = time.monotonic() + self._read_timeout_s
        while not self._decoded:
            started = time.monotonic()
            if started > deadline:
                self.lost_reason = f"no frame decoded for {self._read_timeout_s:g} s"
                return False
            try:
                packet = next(self._packets)
            except (StopIteration, ConnectionResetError):
                self.lost_reason = "the server closed the connection"
                return False
            except av.FFmpegError as exc:
                timed_out = isinstance(exc, av.error.ExitError) or time.monotonic() - started >= self._read_timeout_s
                self.lost_reason = f"no data for {self._read_timeout_s:g} s" if timed_out else exc.strerror
                return False
            try:
                self._decoded.extend(packet.decode())
            except av.FFmpegError:
                continue  # a corrupt packet: the decoder picks up again at a later one
        self._frame = self._decoded.popleft()
        return True

    def retrieve(self) -> np.ndarray:
        return self._frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        self._packets.close()
        self._container.close()


_Capture = _CameraCapture | _StreamCapture


class _Opening:
    """One open running on a daemon thread of its own, so that the capture thread can stop waiting
    for it at a deadline or when the source stops. What it opens after being abandoned it closes."""

    def __init__(self, open_capture: Callable[[], _Capture], name: str):
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self.capture: _Capture | None = None
        self.error: Exception | None = None  # _OpenFailed, or a bug for the capture thread to raise
        threading.Thread(target=self._run, args=(open_capture,), name=name, daemon=True).start()

    def _run(self, open_capture: Callable[[], _Capture]) -> None:
        capture = None
        try:
            capture = open_capture()
        except Exception as exc:
            self.error = exc
        with self._lock:
            keep = not self._abandoned
            if keep:
                self.capture = capture
        if not keep and capture is not None:
            capture.close()
        self._done.set()

    def wait(self, until: float, stop: threading.Event) -> bool:
        """True once the open has returned; False at ``until`` (monotonic) or once ``stop`` is set."""
        while not stop.is_set():
            left = until - time.monotonic()
            if self._done.wait(max(0.0, min(left, 0.1))):
                return True
            if left <= 0:
                return False
        return False

    def abandon(self) -> None:
        """Nobody takes the capture: close it now if it is open, or as soon as it opens."""
        with self._lock:
            self._abandoned = True
            capture, self.capture = self.capture, None
        if capture is not None:
            capture.close()


class LiveSource(Source):
    """A camera (``target`` an int index, read with OpenCV) or a network stream (``target`` a URL,
    read with PyAV), reconnecting by itself.

    Frames are stamped with the wall-clock time at which they were decoded; the backlog that
    FFmpeg buffers while a stream opens (about a second of frames, returned in a burst) is
    skipped after each (re)connect and counted in ``stats().dropped``. Each open attempt runs on
    a thread of its own and is waited for at most ``open_timeout_s`` (less when the first open's
    budget runs out sooner); one still running then closes what it opens, and the next attempt
    waits for it first, so a source never has more than one open under way.
    """

    def __init__(self, target: int | str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 5.0,
                 reconnect_initial_s: float = 0.5, reconnect_max_s: float = 8.0, **kwargs):
        if isinstance(target, int):
            check_camera_index(target)
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
        self._stop_timeout_s = read_timeout_s + 2.0  # a pending read returns within this; opens are not waited for
        self._opening: _Opening | None = None
        self._failure: _OpenFailed | None = None  # why the last (full) open attempt failed

    def _run(self) -> None:
        open_deadline = time.monotonic() + self.open_timeout_s
        delay, wait_first = self.reconnect_initial_s, False
        while not self.stopped:
            was_live = self._frames_read > 0
            capture, delay = self._connect(deadline=None if was_live else open_deadline, delay=delay,
                                           wait_first=wait_first)
            if capture is None:
                if self.stopped:
                    return
                if self._failure.permanent:
                    self._set_status("failed", f"cannot open {self.name}: {self._failure}")
                else:
                    self._set_status("failed", f"no frames from {self.name} within {self.open_timeout_s:g} s; "
                                               f"last attempt: {self._failure}")
                return
            if was_live:
                self._reconnects += 1
            opened_at = time.monotonic()
            self._read_until_lost(capture)
            if self.stopped:
                return
            if time.monotonic() - opened_at >= self.reconnect_max_s:
                delay = self.reconnect_initial_s  # it ran well for a while: back off afresh
            if self._frames_read > 0:
                self._outage_began()
                self._set_status("reconnecting", f"lost {self.name} ({capture.lost_reason}); retrying every "
                                 f"{self.reconnect_initial_s:g} s doubling up to {self.reconnect_max_s:g} s")
            else:
                self._failure = _OpenFailed(f"opened, then {capture.lost_reason} before the first frame")
            wait_first = True  # never hammer a server that accepts and then drops the stream

    def _connect(self, *, deadline: float | None, delay: float, wait_first: bool) -> tuple[_Capture | None, float]:
        """Open, waiting ``delay`` s (doubling up to ``reconnect_max_s``) between attempts and, when
        ``wait_first``, before the first. Gives up at ``deadline`` (monotonic; None: only when stopped)
        or, before it, on a permanent failure. Returns the capture (None on giving up) and the next delay."""
        wait = wait_first
        while not self.stopped:
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            if wait:
                if remaining <= 0 or self._stop_event.wait(min(delay, remaining)):
                    return None, delay
                delay = min(2 * delay, self.reconnect_max_s)
                remaining = math.inf if deadline is None else deadline - time.monotonic()
            wait = True
            if remaining <= 0:
                return None, delay
            capture = self._open_once(min(self.open_timeout_s, remaining))
            if capture is not None:
                return capture, delay
            if deadline is not None and self._failure is not None and self._failure.permanent:
                return None, delay
        return None, delay

    def _open_once(self, timeout_s: float) -> _Capture | None:
        """One open attempt, waited for at most ``timeout_s`` and not after stop(); None when it
        failed (the reason in ``_failure``). Waits first for an abandoned attempt still running."""
        until = time.monotonic() + timeout_s
        if self._opening is not None and not self._opening.wait(until, self._stop_event):
            return None  # the previous attempt still hangs; _failure says it timed out
        target, read_timeout_s = self._target, self.read_timeout_s
        self._opening = opening = _Opening(
            (lambda: _CameraCapture(target)) if isinstance(target, int) else
            (lambda: _StreamCapture(target, timeout_s=timeout_s, read_timeout_s=read_timeout_s)),
            name=f"open {self.stream_id}")
        if not opening.wait(until, self._stop_event):
            opening.abandon()
            if self._failure is None or timeout_s >= self.open_timeout_s:  # else keep the reason of a full attempt
                self._failure = _timed_out(timeout_s)
            return None
        if opening.error is not None:
            if not isinstance(opening.error, _OpenFailed):
                raise opening.error
            self._failure = opening.error
            return None
        capture, opening.capture = opening.capture, None
        if self.stopped:
            capture.close()
            return None
        return capture

    def _read_until_lost(self, capture: _Capture) -> None:
        """Deliver frames until the stream ends, fails or stalls for ``read_timeout_s``; ``live`` from the first frame."""
        try:
            if not self._skip_backlog(capture):
                return
            while not self.stopped and capture.grab():
                image = capture.retrieve()
                if image is None:
                    return
                self._deliver_live(image, bgr=capture.bgr)
        finally:
            capture.close()

    def _deliver_live(self, image: np.ndarray, *, bgr: bool) -> None:
        self._deliver(image, max(time.time(), self._last_t + 1e-6), bgr=bgr)
        if self.status.state != "live":
            self._set_status("live", f"reading {self.name}")

    def _skip_backlog(self, capture: _Capture) -> bool:
        """Drop the frames FFmpeg buffered while the stream was opening: they come back all at once,
        up to a second old, and would all be stamped "now". Grabs until one has to wait for a live
        frame (which is kept), skipping at most ``_BACKLOG_MAX_S`` of video at the stream's nominal
        rate. False if the stream is lost meanwhile."""
        fps = usable_frame_rate(capture.fps)
        for _ in range(round(_BACKLOG_MAX_S * fps)):
            if self.stopped:
                return True
            started = time.monotonic()
            if not capture.grab():
                return False
            if time.monotonic() - started >= 0.25 / fps:  # this grab waited: the frame is live
                image = capture.retrieve()
                if image is not None:
                    self._deliver_live(image, bgr=capture.bgr)
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
        cap = _open_capture(str(self.path))
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


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_camera_index(index: int) -> int:
    """``index`` if it can name a local camera; ValueError naming it otherwise."""
    if not 0 <= index <= MAX_CAMERA_INDEX:
        raise ValueError(f"camera index {_shorten(str(index))} is out of range: camera index must be "
                         f"0..{MAX_CAMERA_INDEX}")
    return index


def camera_index(spec: str | int) -> int | None:
    """The camera index ``spec`` names (an int, or ASCII digits with an optional sign), None when
    it names no camera; ValueError when the index is outside ``0..MAX_CAMERA_INDEX``."""
    if isinstance(spec, int):
        return check_camera_index(spec)
    if not _CAMERA_SPEC.fullmatch(spec):
        return None
    if len(spec.lstrip("+-").lstrip("0")) > len(str(MAX_CAMERA_INDEX)):  # never int() a huge string
        raise ValueError(f"camera index {_shorten(spec)} is out of range: camera index must be 0..{MAX_CAMERA_INDEX}")
    return check_camera_index(int(spec))


def check_stream_url(url: str) -> str:
    """``url`` if it can be a stream URL; ValueError naming what is wrong otherwise: the scheme (one
    of :data:`STREAM_SCHEMES`), length (``MAX_URL_LENGTH``), spaces or control characters, no host."""
    shown = _shorten(mask_credentials(url), 100)
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in STREAM_SCHEMES:
        raise ValueError(f"unsupported source {shown}: expected a camera index, a video file "
                         f"or a URL starting with {', '.join(s + '://' for s in STREAM_SCHEMES)}")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"stream URL {shown} is too long: at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError(f"stream URL {shown!r} contains spaces or control characters (percent-encode them)")
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        raise ValueError(f"stream URL {shown} is malformed: {exc}") from None
    if not host:
        raise ValueError(f"stream URL {shown} has no host")
    return url


def describe_source(spec: str | int) -> str:
    """How a source spec is shown to people (credentials masked); never raises."""
    text = str(spec)
    if isinstance(spec, int) or _CAMERA_SPEC.fullmatch(text):
        return f"camera {int(text) if len(text) <= 12 else _shorten(text)}"
    return mask_credentials(text)


def open_source(spec: str | int, *, config: PipelineConfig | None = None, stream_id: str | None = None,
                on_status: StatusCallback | None = None, realtime: bool | None = None,
                loop: bool | None = None) -> Source:
    """A (not yet started) source for ``spec``: a camera index (``0`` or ``"0"``, at most
    ``MAX_CAMERA_INDEX``), a URL (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http://``, ``https://``)
    or a video file path.

    ``config``: the pipeline settings (defaults when None); ``realtime`` and
    ``loop`` override its ``file_realtime`` / ``file_loop`` for files. Raises ValueError for a
    camera index out of range or a bad URL (:func:`check_stream_url`) and FileNotFoundError for a
    missing file, naming the (masked) source.
    """
    config = config if config is not None else PipelineConfig()
    common = dict(stream_id=stream_id, on_status=on_status, max_side=config.capture_max_side or None,
                  buffer=FrameBuffer.for_settings(config))
    live = dict(open_timeout_s=config.open_timeout_s, read_timeout_s=config.read_timeout_s,
                reconnect_initial_s=config.reconnect_initial_s, reconnect_max_s=config.reconnect_max_s)
    index = camera_index(spec)
    if index is not None:
        return LiveSource(index, **live, **common)
    spec = str(spec)
    if "://" in spec:
        return LiveSource(check_stream_url(spec), **live, **common)
    return FileSource(spec, realtime=config.file_realtime if realtime is None else realtime,
                      loop=config.file_loop if loop is None else loop, **common)
