"""Who owns what in the running app.

- :class:`ModelHost`: the one :class:`~pipelines.service.RecognitionService` of the process
  (one model for every user), replaced as a whole when someone loads other weights in the
  model panel; ``generation`` counts replacements.
  It admits every stream a tab opens under the process-wide limits (``app.max_streams`` live
  streams, ``app.webcam_sessions`` webcams) and, on a thread of its own, closes the streams of
  tabs that went quiet for ``app.idle_timeout_s`` (a vanished client whose unload never came).
- :class:`BrowserSession`: one per browser tab (kept in a ``gr.State``): its own push stream
  for the webcam and its own camera streams. Nothing here is shared between tabs. When the
  service is replaced, or the tab's streams were closed as idle, a session re-opens its streams
  when the tab next uses them; when the tab closes, its streams are removed.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from typing import Callable

import numpy as np

from app.inputs import default_camera_name
from pipelines.service import RecognitionService
from tdn.config import Config

log = logging.getLogger(__name__)


class StreamLimitError(ValueError):
    """A stream was refused: the server runs as many live streams (or webcams) as it may."""


class ModelHost:
    """Holds the service; :meth:`reload` swaps in a new one built from changed model settings.
    Tabs open streams through :meth:`open_stream`, which enforces the process-wide limits."""

    def __init__(self, config: Config, service: RecognitionService | None = None):
        self.config = config
        self.service = service if service is not None else RecognitionService(config)
        self.service.compile_ahead()  # beside the page loading, not on the first window
        self.generation = 0
        self._reload_lock = threading.Lock()
        self._admit_lock = threading.Lock()
        self._owners: dict[str, tuple[BrowserSession, bool]] = {}  # open stream id -> (its tab, is a webcam)
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap_until_closed, name="idle stream reaper", daemon=True)
        self._reaper.start()

    def reload(self, model_overrides: dict, pipeline_overrides: dict) -> RecognitionService:
        """Build a service with ``model``/``pipeline`` settings replaced, then retire the old one.
        On error the current service stays and the error propagates."""
        with self._reload_lock:
            config = dataclasses.replace(
                self.config,
                model=dataclasses.replace(self.config.model, **model_overrides),
                pipeline=dataclasses.replace(self.config.pipeline, **pipeline_overrides),
            )
            new = RecognitionService(config)
            try:
                new.compile_ahead(wait=True)  # a graph the engine cannot compile is this load's error
            except ValueError:
                new.close()
                raise
            with self._admit_lock:
                old, self.service, self.config = self.service, new, config
                self.generation += 1
                self._owners.clear()  # the old service's streams close with it; tabs re-open theirs
        old.close()
        return new

    # -- stream admission ----------------------------------------------------------------
    def open_stream(self, owner: BrowserSession, open_on: Callable[[RecognitionService], str], *,
                    webcam: bool = False) -> tuple[str, int]:
        """``open_on(service)`` on the current service if the limits allow one more stream (one
        more webcam, for ``webcam``); returns (stream id, generation). Raises :class:`StreamLimitError`."""
        app = self.config.app
        with self._admit_lock:
            if len(self._owners) >= app.max_streams:
                raise StreamLimitError(f"the server already runs {len(self._owners)} live streams, its limit "
                                       f"(app.max_streams); close one or try again later")
            webcams = sum(is_webcam for _, is_webcam in self._owners.values())
            if webcam and webcams >= app.webcam_sessions:
                raise StreamLimitError(f"all {app.webcam_sessions} webcam slots are in use (app.webcam_sessions); "
                                       "yours starts when one frees up")
            stream_id = open_on(self.service)
            self._owners[stream_id] = (owner, webcam)
            return stream_id, self.generation

    def close_stream(self, stream_id: str, generation: int) -> None:
        """Remove a stream opened by :meth:`open_stream` (a no-op if it is already gone)."""
        with self._admit_lock:
            if generation != self.generation:
                return  # closed with its service
            self._owners.pop(stream_id, None)
            service = self.service
        try:
            service.remove_source(stream_id)
        except ValueError:
            pass  # already gone

    # -- idle tabs ------------------------------------------------------------------------
    def close_idle(self, now: float | None = None) -> None:
        """Let every tab with open streams close those idle longer than ``app.idle_timeout_s``
        (:meth:`BrowserSession.close_idle`); ``now`` on the ``time.monotonic`` clock."""
        now = time.monotonic() if now is None else now
        with self._admit_lock:
            owners = {owner for owner, _ in self._owners.values()}
        for owner in owners:
            owner.close_idle(now, self.config.app.idle_timeout_s)

    def _reap_until_closed(self) -> None:
        interval = min(5.0, max(0.5, self.config.app.idle_timeout_s / 4))
        while not self._stopping.wait(interval):
            try:
                self.close_idle()
            except Exception:  # keep reaping; the failure is in the log
                log.exception("closing idle streams failed")

    def close(self) -> None:
        """Stop reaping and close the service (which waits for a compile under way)."""
        self._stopping.set()
        self._reaper.join(10.0)
        self.service.close()


@dataclasses.dataclass
class Camera:
    """One camera of a tab. ``stopped``: the user stopped it (no stream until started again);
    ``last_frame``: its newest frame when it stopped, shown greyed."""
    spec: int | str  # what the user entered (may hold credentials: never shown)
    name: str  # given by the user or the default (no credentials), unique in the tab
    stream_id: str | None = None
    generation: int = -1
    error: str | None = None
    loop: bool | None = None  # files only (the demo stream): restart at the end; None: pipeline.file_loop
    stopped: bool = False
    last_frame: np.ndarray | None = None


class BrowserSession:
    """One browser tab's streams: a webcam push stream and up to ``max_cameras`` cameras.

    ``seen``: when the page last refreshed its camera views (:meth:`live_cameras`);
    ``webcam_seen``: when the webcam last sent a frame (:meth:`webcam_stream`), both on the
    ``time.monotonic`` clock."""

    def __init__(self, host: ModelHost, max_cameras: int):
        self.host = host
        self.max_cameras = max_cameras
        self.key = uuid.uuid4().hex[:8]
        self.cameras: list[Camera] = []
        self._webcam: tuple[str, int] | None = None  # (stream id, generation)
        self.on_webcam_stop: Callable[[], None] | None = None  # closes the frames' transport (the WebRTC peer)
        self.camera_slots_shown = 0  # camera views the page shows now (the UI skips refreshes of none)
        self.seen = self.webcam_seen = time.monotonic()
        self._lock = threading.Lock()
        self.closed = False

    # -- webcam --------------------------------------------------------------------------
    def webcam_stream(self) -> str:
        """The id of this tab's webcam push stream on the current service, opened on first use
        or after it was closed as idle; called for every frame. Raises :class:`StreamLimitError`."""
        with self._lock:
            self.webcam_seen = time.monotonic()
            service, generation = self.host.service, self.host.generation
            if self._webcam is None or self._webcam[1] != generation or self._webcam[0] not in service.streams():
                self._webcam = self.host.open_stream(self, lambda s: s.add_push_source(f"webcam {self.key}"),
                                                     webcam=True)
            return self._webcam[0]

    def webcam_id(self) -> str | None:
        """The id of this tab's webcam stream if it is open on the current service (opens nothing)."""
        with self._lock:
            webcam = self._webcam
        return webcam[0] if webcam is not None and webcam[1] == self.host.generation else None

    def stop_webcam(self) -> None:
        """Close the webcam's transport (``on_webcam_stop``) and its stream, freeing its slot."""
        if self.on_webcam_stop is not None:
            self.on_webcam_stop()
        with self._lock:
            webcam, self._webcam = self._webcam, None
        if webcam is not None:
            self.host.close_stream(*webcam)

    # -- cameras -------------------------------------------------------------------------
    def add_camera(self, spec: int | str, name: str | None = None, *, loop: bool | None = None) -> Camera:
        """Open ``spec`` (already checked by :func:`app.inputs.parse_camera_source`) as ``name``
        (checked by :func:`app.inputs.parse_camera_name`; default :func:`~app.inputs.default_camera_name`;
        `` #2``, `` #3``, ... added when the tab has a camera of that name); a source that
        cannot be opened comes back with ``error`` set; ``loop``:
        files only (the demo stream), the limits raise :class:`StreamLimitError`."""
        with self._lock:
            if len(self.cameras) >= self.max_cameras:
                raise ValueError(f"at most {self.max_cameras} cameras per session (app.max_cameras); remove one first")
            wanted, taken, n = name or default_camera_name(spec), {c.name for c in self.cameras}, 2
            name = wanted
            while name in taken:
                name, n = f"{wanted} #{n}", n + 1
            camera = Camera(spec=spec, name=name, loop=loop)
            self._open(camera)
            self.cameras.append(camera)
            return camera

    def stop_camera(self, index: int, last_frame: np.ndarray | None = None) -> None:
        """Close camera ``index``'s stream and keep it (and ``last_frame``) until started again."""
        with self._lock:
            if not 0 <= index < len(self.cameras):
                return
            camera = self.cameras[index]
            camera.stopped, camera.last_frame, camera.error = True, last_frame, None
            self._close(camera)

    def start_camera(self, index: int) -> None:
        """Open a stopped camera again (errors and limits end up in its ``error``)."""
        with self._lock:
            if not 0 <= index < len(self.cameras) or not self.cameras[index].stopped:
                return
            camera = self.cameras[index]
            camera.stopped, camera.last_frame = False, None
            try:
                self._open(camera)
            except StreamLimitError as exc:
                camera.error = f"waiting for a free stream: {exc}"

    def remove_camera(self, index: int) -> None:
        with self._lock:
            if not 0 <= index < len(self.cameras):
                return
            camera = self.cameras.pop(index)
        self._close(camera)

    def live_cameras(self) -> list[Camera]:
        """The cameras, each (re-)opened first if the service was replaced, they were closed as
        idle or the limits refused them before; called by the page's every refresh."""
        with self._lock:
            self.seen = time.monotonic()
            for camera in self.cameras:
                if camera.generation != self.host.generation and not camera.stopped:
                    try:
                        self._open(camera)
                    except StreamLimitError as exc:
                        camera.error = f"waiting for a free stream: {exc}"
            return list(self.cameras)

    def _open(self, camera: Camera) -> None:
        camera.stream_id, camera.error = None, None
        try:
            camera.stream_id, camera.generation = self.host.open_stream(
                self, lambda s: s.add_source(camera.spec, stream_id=f"{camera.name} [{self.key}]", loop=camera.loop))
        except StreamLimitError:
            camera.generation = -1  # try again at the next refresh
            raise
        except (ValueError, FileNotFoundError) as exc:
            camera.generation, camera.error = self.host.generation, str(exc)

    def _close(self, camera: Camera) -> None:
        stream_id, camera.stream_id = camera.stream_id, None
        if stream_id is not None:
            self.host.close_stream(stream_id, camera.generation)

    # -- end -------------------------------------------------------------------------------
    def close_idle(self, now: float, idle_s: float) -> None:
        """Close the webcam if it sent no frame for ``idle_s``, and the cameras if the page did not
        refresh for ``idle_s`` (the tab is gone or asleep); each re-opens when the tab uses it again."""
        if now - self.webcam_seen > idle_s:
            self.stop_webcam()
        if now - self.seen > idle_s:
            with self._lock:
                for camera in self.cameras:
                    if not camera.stopped:
                        self._close(camera)
                        camera.generation, camera.error = -1, "closed while the page was away"

    def close(self) -> None:
        """Remove every stream of this tab (called when the tab closes or its state expires)."""
        if self.closed:
            return
        self.closed = True
        self.stop_webcam()
        with self._lock:
            cameras, self.cameras = self.cameras, []
        for camera in cameras:
            self._close(camera)
