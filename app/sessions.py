"""Who owns what in the running app.

- :class:`ModelHost`: the one :class:`~pipelines.service.RecognitionService` of the process
  (one model for every user), replaced as a whole when someone loads other weights in the
  model panel; ``generation`` counts replacements.
- :class:`BrowserSession`: one per browser tab (kept in a ``gr.State``): its own push stream
  for the webcam and its own camera streams. Nothing here is shared between tabs. When the
  service is replaced, a session re-opens its streams on the new one; when the tab closes, its
  streams are removed.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import uuid

from pipelines.service import RecognitionService
from pipelines.sources import describe_source
from tdn.config import Config

log = logging.getLogger(__name__)


class ModelHost:
    """Holds the service; :meth:`reload` swaps in a new one built from changed model settings."""

    def __init__(self, config: Config, service: RecognitionService | None = None):
        self.config = config
        self.service = service if service is not None else RecognitionService(config)
        self.generation = 0
        self._reload_lock = threading.Lock()

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
            old, self.service, self.config = self.service, new, config
            self.generation += 1
        old.close()
        return new

    def close(self) -> None:
        self.service.close()


@dataclasses.dataclass
class Camera:
    spec: int | str  # what the user entered (may hold credentials: never shown)
    name: str  # masked, for display
    stream_id: str | None = None
    generation: int = -1
    error: str | None = None


class BrowserSession:
    """One browser tab's streams: a webcam push stream and up to ``max_cameras`` cameras."""

    def __init__(self, host: ModelHost, max_cameras: int):
        self.host = host
        self.max_cameras = max_cameras
        self.key = uuid.uuid4().hex[:8]
        self.cameras: list[Camera] = []
        self._webcam: tuple[str, int] | None = None  # (stream id, generation)
        self.camera_slots_shown = 0  # camera views the page shows now (the UI skips refreshes of none)
        self._lock = threading.Lock()
        self.closed = False

    # -- webcam --------------------------------------------------------------------------
    def webcam_stream(self) -> str:
        """The id of this tab's webcam push stream on the current service (opened on first use)."""
        with self._lock:
            service, generation = self.host.service, self.host.generation
            if self._webcam is None or self._webcam[1] != generation or self._webcam[0] not in service.streams():
                self._webcam = (service.add_push_source(f"webcam {self.key}"), generation)
            return self._webcam[0]

    def stop_webcam(self) -> None:
        with self._lock:
            webcam, self._webcam = self._webcam, None
        if webcam is not None:
            self._remove(webcam[0])

    # -- cameras -------------------------------------------------------------------------
    def add_camera(self, spec: int | str) -> Camera:
        """Open ``spec`` (already checked by :func:`app.inputs.parse_camera_source`)."""
        with self._lock:
            if len(self.cameras) >= self.max_cameras:
                raise ValueError(f"at most {self.max_cameras} cameras per session (app.max_cameras); remove one first")
            camera = Camera(spec=spec, name=describe_source(spec))
            self._open(camera)
            self.cameras.append(camera)
            return camera

    def remove_camera(self, index: int) -> None:
        with self._lock:
            if not 0 <= index < len(self.cameras):
                return
            camera = self.cameras.pop(index)
        if camera.stream_id is not None:
            self._remove(camera.stream_id)

    def live_cameras(self) -> list[Camera]:
        """The cameras, each re-opened first if the service was replaced since it was opened."""
        with self._lock:
            for camera in self.cameras:
                if camera.generation != self.host.generation:
                    self._open(camera)
            return list(self.cameras)

    def _open(self, camera: Camera) -> None:
        camera.generation = self.host.generation
        camera.stream_id, camera.error = None, None
        try:
            camera.stream_id = self.host.service.add_source(camera.spec, stream_id=f"{camera.name} [{self.key}]")
        except (ValueError, FileNotFoundError) as exc:
            camera.error = str(exc)

    # -- end -------------------------------------------------------------------------------
    def _remove(self, stream_id: str) -> None:
        try:
            self.host.service.remove_source(stream_id)
        except ValueError:
            pass  # already gone (service replaced, or removed twice)

    def close(self) -> None:
        """Remove every stream of this tab (called when the tab closes or its state expires)."""
        if self.closed:
            return
        self.closed = True
        self.stop_webcam()
        with self._lock:
            cameras, self.cameras = self.cameras, []
        for camera in cameras:
            if camera.stream_id is not None:
                self._remove(camera.stream_id)
