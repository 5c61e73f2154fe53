"""The rolling frame buffer between a source's capture thread and the window scheduler.

Bounded three ways, drop-oldest: at most ``max_frames`` frames, at most ``max_bytes`` of image
data (whatever the frames' size), and no frame older than ``max_seconds`` before the newest one
(by capture time). A producer never blocks and memory never grows, however slow the reader;
readers take snapshots (lists of references to the immutable frames) and can wait for a frame
newer than the last one they saw.
"""
from __future__ import annotations

import math
import threading
from collections import deque

from pipelines.types import Frame
from tdn.config import PipelineConfig


class FrameBuffer:
    """Thread-safe, bounded, drop-oldest ring of :class:`Frame` s in capture order.

    Example::

        buf = FrameBuffer(max_seconds=6.0, max_frames=256, max_bytes=512 * 2**20)
        buf.append(frame)                              # capture thread
        frames = buf.wait_for_newer(last_index, 0.5)   # reader: [] on timeout
    """

    def __init__(self, *, max_seconds: float | None = 6.0, max_frames: int = 256, max_bytes: int | None = None):
        if max_frames < 1:
            raise ValueError(f"buffer max_frames must be >= 1, got {max_frames}")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"buffer max_seconds must be > 0 (or None for no age limit), got {max_seconds}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"buffer max_bytes must be >= 1 (or None for no byte limit), got {max_bytes}")
        self.max_seconds = max_seconds
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._changed = threading.Condition()
        self._evicted = 0
        self._closed = False

    @classmethod
    def for_settings(cls, settings: PipelineConfig) -> FrameBuffer:
        """A buffer with the bounds ``pipeline.buffer_seconds``, ``buffer_max_frames`` and ``buffer_max_mb``."""
        return cls(max_seconds=settings.buffer_seconds, max_frames=settings.buffer_max_frames,
                   max_bytes=settings.buffer_max_mb * 2**20)

    def append(self, frame: Frame) -> None:
        """Add the newest frame (its ``t`` must not go back in time), evicting what falls out."""
        with self._changed:
            if self._frames and frame.t < self._frames[-1].t:
                raise ValueError(f"frame {frame.index} at t={frame.t:.3f} is older than the newest buffered frame "
                                 f"(t={self._frames[-1].t:.3f}); sources must stamp frames in capture order")
            self._frames.append(frame)
            self._bytes += frame.image.nbytes
            oldest_allowed = -math.inf if self.max_seconds is None else frame.t - self.max_seconds
            while len(self._frames) > 1 and (len(self._frames) > self.max_frames or self._frames[0].t < oldest_allowed
                                             or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                self._bytes -= self._frames.popleft().image.nbytes
                self._evicted += 1
            self._changed.notify_all()

    def snapshot(self, since: float | None = None) -> list[Frame]:
        """The buffered frames (oldest first), only those with ``t >= since`` when given."""
        with self._changed:
            if since is None:
                return list(self._frames)
            return [f for f in self._frames if f.t >= since]

    def latest(self) -> Frame | None:
        with self._changed:
            return self._frames[-1] if self._frames else None

    def wait_for_newer(self, index: int | None, timeout: float) -> list[Frame]:
        """Wait up to ``timeout`` s until a frame with ``Frame.index > index`` is buffered (any frame when
        ``index`` is None), then return a snapshot; ``[]`` on timeout or when the buffer is closed."""
        def ready() -> bool:
            return self._closed or (bool(self._frames) and (index is None or self._frames[-1].index > index))

        with self._changed:
            if not self._changed.wait_for(ready, timeout) or not self._frames:
                return []
            if index is not None and self._frames[-1].index <= index:
                return []
            return list(self._frames)

    def close(self) -> None:
        """Wake every waiting reader (the source has stopped); frames stay readable."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def nbytes(self) -> int:
        """Image bytes held now (at most ``max_bytes``, or one frame if a single frame is larger)."""
        with self._changed:
            return self._bytes

    @property
    def evicted(self) -> int:
        """Frames dropped (oldest first) to keep within the bounds, since creation."""
        with self._changed:
            return self._evicted

    def __len__(self) -> int:
        with self._changed:
            return len(self._frames)
