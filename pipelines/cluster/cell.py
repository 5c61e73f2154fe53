"""A camera cell: the single-box :class:`~pipelines.service.RecognitionService` for a set of cameras.

The controller runs one per node (or per GPU) as a Ray actor (:func:`cell_actor`); Ray restarts
a crashed one, empty (a new ``incarnation``), and the controller then gives it cameras again.
Frames never leave the cell: camera ids and URLs come in (:meth:`CameraCell.add_camera`), and
event JSON goes out, exactly ``event.to_json()`` of the service's events, as ``tdn stream
--json`` prints them (:meth:`CameraCell.events_since`), plus per-camera figures
(:meth:`CameraCell.cameras`) and what the cell sustains (:meth:`CameraCell.health`).

The class itself has no Ray in it (Ray's actor wraps it), so it also runs in-process.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import deque

import numpy as np
import torch

from pipelines.events import Event, StatusEvent
from pipelines.masking import mask_credentials
from pipelines.service import RecognitionService
from pipelines.types import Frame, SourceStatus, Window
from tdn.config import Config
from tdn.export import LIVE_PARTS
from tdn.sampling import SEGMENT_LENGTH

CALIBRATION_STREAM = "\0calibration"  # no camera id can be this (ids are checked by the controller)


class CameraCell:
    """The service for the cameras the controller assigned here; thread-safe.

    ``name``: the cell's name in the cluster. Events are kept in a bounded log of
    ``cluster.event_buffer`` entries, each with a sequence number; a reader that falls behind
    loses the oldest (counted), nothing queues without bound.
    """

    def __init__(self, config: Config, name: str):
        torch.set_num_threads(config.cluster.torch_threads)
        self.name = name
        self.incarnation = uuid.uuid4().hex  # a restarted cell is a new incarnation, with no cameras
        self.node = f"{socket.gethostname()} pid {os.getpid()}"
        self._lock = threading.Lock()
        self._changing = threading.Lock()  # one add or remove at a time (the actor serves calls on several threads)
        self._events: deque[tuple[int, dict]] = deque(maxlen=config.cluster.event_buffer)
        self._next_seq = 0
        self._urls: dict[str, str] = {}  # camera id -> masked URL
        self._refused: dict[str, SourceStatus] = {}  # camera id -> why it could not even be opened
        self.service = RecognitionService(config)
        p, t = config.pipeline, self.service.model.cfg.num_segments
        self.demand_per_camera = t / p.window_seconds  # windows/s one live camera asks for (one per segment step)
        self.service.compile_ahead(wait=True, parts=LIVE_PARTS)  # compile time is not engine work to calibrate
        self._calibrate()
        self.service.subscribe(self._record)

    # -- cameras -----------------------------------------------------------------------------
    def add_camera(self, camera_id: str, url: str) -> None:
        """Start serving ``url`` as stream ``camera_id`` (no-op if it is already served). A URL the
        service refuses at once (``ValueError``) is kept as a ``failed`` camera with the reason."""
        with self._changing:
            if camera_id in self.service.streams():
                return
            with self._lock:
                self._urls[camera_id] = mask_credentials(url)
                self._refused.pop(camera_id, None)
            try:
                self.service.add_source(url, stream_id=camera_id)
            except (ValueError, FileNotFoundError) as exc:  # SourceError is a ValueError
                status = SourceStatus("failed", mask_credentials(str(exc)), time.time())
                with self._lock:
                    self._refused[camera_id] = status
                self._record(StatusEvent(camera_id, status))

    def remove_camera(self, camera_id: str) -> None:
        """Stop serving ``camera_id`` (no-op if it is not served here)."""
        with self._changing:
            with self._lock:
                self._urls.pop(camera_id, None)
                self._refused.pop(camera_id, None)
            if camera_id in self.service.streams():
                self.service.remove_source(camera_id)

    def camera_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._urls)

    def cameras(self) -> dict[str, dict]:
        """Per camera id: ``status, detail, fps, prediction_rate, latency_ms_p50, latency_ms_p95,
        predictions, dropped_windows, reconnects, topk`` (the newest prediction's, [] before one)."""
        stats = self.service.stats()
        with self._lock:
            urls, refused = dict(self._urls), dict(self._refused)
        found = {}
        for camera_id, url in urls.items():
            s = stats.get(camera_id)
            if s is None:
                status = refused.get(camera_id, SourceStatus("connecting", "", time.time()))
                found[camera_id] = {"url": url, "status": status.state, "detail": status.detail, "fps": 0.0,
                                    "prediction_rate": 0.0, "latency_ms_p50": None, "latency_ms_p95": None,
                                    "predictions": 0, "dropped_windows": 0, "reconnects": 0, "topk": []}
                continue
            try:
                latest = self.service.latest(camera_id)
            except ValueError:  # removed meanwhile
                continue
            record = s.to_json()
            found[camera_id] = {"url": url, "status": s.state, "detail": s.detail,
                                **{k: record[k] for k in ("fps", "prediction_rate", "latency_ms_p50", "latency_ms_p95",
                                                          "predictions", "dropped_windows", "reconnects")},
                                "topk": latest.to_json()["topk"] if latest is not None else []}
        return found

    # -- events ------------------------------------------------------------------------------
    def _record(self, event: Event) -> None:
        record = event.to_json()
        with self._lock:
            self._events.append((self._next_seq, record))
            self._next_seq += 1

    def events_since(self, seq: int) -> tuple[list[dict], int, int]:
        """``(events, next_seq, lost)``: the logged events numbered ``seq`` and later, the number to
        ask for next, and how many wanted ones had already left the bounded log."""
        with self._lock:
            first = self._events[0][0] if self._events else self._next_seq
            found = [record for n, record in self._events if n >= seq]
            return found, self._next_seq, max(0, first - seq)

    # -- health and capacity -----------------------------------------------------------------
    def _calibrate(self) -> None:
        """One full batch of synthetic windows (no cached segments: the worst case), so that the
        cell has a measured capacity before it has served a camera; it also warms the model up."""
        engine, spec = self.service.engine, self.service.spec
        t = self.service.model.cfg.num_segments
        image = np.zeros((spec.resize_short, spec.resize_short, 3), np.uint8)
        windows = []
        for n in range(engine.max_batch):
            frames = tuple(tuple(Frame(image, float(n * t + i), j) for j in range(SEGMENT_LENGTH)) for i in range(t))
            windows.append(Window(f"{CALIBRATION_STREAM}{n}", tuple(float(n * t + i) for i in range(t)), frames,
                                  float(n * t + t)))
        engine.run_windows(windows)
        for n in range(engine.max_batch):
            engine.forget_stream(f"{CALIBRATION_STREAM}{n}")

    def capacity(self) -> float:
        """Windows/s this cell's engine sustains: windows scored per second of engine work (its
        calibration batch and every live batch since)."""
        stats = self.service.engine.stats()
        return stats.windows / stats.busy_s if stats.busy_s > 0 else 0.0

    def health(self) -> dict:
        """What the controller checks every ``cluster.health_interval_s``: who this is (a new
        ``incarnation`` after a restart), its cameras, its measured capacity, and since it started
        the CPU time of its process (``cpu_s``: decoding, preprocessing, model) and of its engine
        (``busy_s``: preprocessing and model)."""
        return {"name": self.name, "incarnation": self.incarnation, "node": self.node, "cameras": self.camera_ids(),
                "capacity": self.capacity(), "demand_per_camera": self.demand_per_camera,
                "cpu_s": time.process_time(), "busy_s": self.service.engine.stats().busy_s}

    def close(self) -> None:
        self.service.close()


def cell_actor(config: Config):
    """``CameraCell`` as a Ray actor class with the cell's resources and restarts from ``config.cluster``."""
    import ray

    c = config.cluster
    return ray.remote(num_cpus=c.cell_cpus, num_gpus=c.cell_gpus, max_restarts=c.cell_restarts,
                      max_concurrency=8)(CameraCell)
