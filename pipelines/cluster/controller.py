"""The cluster controller: one named, detached Ray actor (:func:`controller_actor`) that owns

- the desired camera list (id, name, URL; URLs are shown masked, never logged in clear),
- the cells (:mod:`pipelines.cluster.cell`): it starts ``cluster.cells`` of them (0: one per
  node), checks each every ``cluster.health_interval_s`` and starts a new one when one is gone,
- the assignment camera -> cell, by measured capacity: a camera goes to the living cell with the
  most headroom (windows/s the cell sustains minus what its cameras ask for),
- moving cameras: a cell that died, did not answer for ``cluster.health_timeout_s`` (it is then
  killed, so it cannot serve on) or came back empty after a restart has its cameras placed
  again; a cell serving a camera it was not given is told to drop it, so no camera is ever
  served twice and none is lost,
- the merged event log that ``GET /events`` reads (bounded: ``cluster.event_buffer``).

Ray restarts the controller if its process dies. The camera list survives that: it is kept in
Ray's key-value store in the GCS (:class:`SavedCameras`). The restarted controller stops the cells
of its previous life (the cells of a dead owner die with it; any left are killed) and places every
camera again on new cells. Cells that die before they ever come up are started again after a
growing pause (``START_BACKOFF_S``), so a broken node or setup is not restarted in a tight loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field

from pipelines.masking import mask_credentials
from pipelines.sources import check_stream_url
from tdn.config import Config

log = logging.getLogger(__name__)

CONTROLLER_NAME = "tdn-controller"
CELL_ACTOR_PREFIX = "tdn-"  # a cell named cell-N is the Ray actor tdn-cell-N
START_BACKOFF_S = (2.0, 300.0)  # pause after the first cell that died while starting, and the longest one
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class _Camera:
    id: str
    url: str  # as given (may hold credentials): only cells see it
    cell: str | None = None  # None: waiting for a living cell


@dataclass
class _Cell:
    name: str
    handle: object  # the Ray actor handle
    state: str = "starting"  # starting | up | dead
    incarnation: str | None = None
    node: str = ""
    capacity: float = 0.0
    demand_per_camera: float = 0.0
    last_ok: float = field(default_factory=time.monotonic)
    cursor: int = 0  # next event number to read from it
    first_health: object = None  # while starting: the pending answer to its first health call
    detail: str = ""  # why it is dead


class SavedCameras:
    """The desired camera list (id -> URL as given) and the naming counter, in Ray's key-value store
    in the GCS (where Ray Serve keeps its own state), so that a restarted controller has them back.
    Outside Ray (the controller constructed in-process) it keeps nothing."""

    KEY = "cameras"

    def __init__(self, namespace: str):
        self.namespace = f"tdn-controller-{namespace}"

    @staticmethod
    def _kv():
        from ray.experimental import internal_kv

        return internal_kv if internal_kv._internal_kv_initialized() else None

    def load(self) -> tuple[dict[str, str], int]:
        kv = self._kv()
        saved = kv and kv._internal_kv_get(self.KEY, namespace=self.namespace)
        if not saved:
            return {}, 0
        state = json.loads(saved)
        return state["cameras"], state["numbered"]

    def save(self, cameras: dict[str, str], numbered: int) -> None:
        kv = self._kv()
        if kv is not None:
            state = json.dumps({"cameras": cameras, "numbered": numbered}, allow_nan=False)
            kv._internal_kv_put(self.KEY, state, overwrite=True, namespace=self.namespace)

    def forget(self) -> None:
        kv = self._kv()
        if kv is not None:
            kv._internal_kv_del(self.KEY, namespace=self.namespace)


class ClusterController:
    """See the module docstring; every method is a coroutine of the async Ray actor."""

    def __init__(self, config: Config):
        self.config = config
        self._saved = SavedCameras(config.cluster.namespace)
        urls, self._numbered = self._saved.load()  # cameras and cells are numbered from _numbered on
        self._cameras: dict[str, _Camera] = {camera_id: _Camera(camera_id, url) for camera_id, url in urls.items()}
        self._cells: dict[str, _Cell] = {}
        self._log: deque[tuple[int, dict]] = deque(maxlen=config.cluster.event_buffer)
        self._next_seq = 0
        self._failed_starts = 0  # cells in a row that died before they came up
        self._next_start = 0.0  # time.monotonic() before which no cell is started
        self._watcher: asyncio.Task | None = None
        # Ray runs an async actor's __init__ in its event loop: watching starts here, after a restart too
        with contextlib.suppress(RuntimeError):  # no running loop: constructed in-process (unit tests)
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    # -- cameras -----------------------------------------------------------------------------
    async def add_camera(self, url: str, name: str | None = None) -> dict:
        """Add ``url`` (rtsp/http(s)/rtmp) as camera ``name`` (default ``cam-N``); returns its entry.
        Raises ValueError for a bad URL or a name that is malformed or taken."""
        url = check_stream_url(url)
        if name is not None:
            if not CAMERA_NAME.fullmatch(name):
                raise ValueError(f"camera name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                                 "starting with a letter or digit")
            if name in self._cameras:
                raise ValueError(f"camera name {name!r} is already in use")
            camera_id = name
        else:
            camera_id = self._new_name("cam")
        camera = self._cameras[camera_id] = _Camera(camera_id, url)
        self._save()
        await self._place(camera)
        return self._entry(camera)

    async def remove_camera(self, camera_id: str) -> None:
        """Stop and forget camera ``camera_id``; ValueError if there is none."""
        camera = self._cameras.pop(camera_id, None)
        if camera is None:
            raise ValueError(f"no camera {camera_id!r}; cameras: {', '.join(self._cameras) or 'none'}")
        self._save()
        cell = self._cells.get(camera.cell) if camera.cell else None
        if cell is not None and cell.state == "up":
            try:
                await self._call(cell, "remove_camera", camera_id)
            except Exception as exc:  # the watch loop drops it from the cell later
                log.warning("could not stop %s on %s: %s", camera_id, cell.name, exc)

    async def cameras(self) -> list[dict]:
        """Every camera: ``id, url`` (masked), ``cell`` and the figures its cell reports
        (``status, detail, fps, prediction_rate, latency_ms_p50/p95, predictions, dropped_windows,
        reconnects, topk``); a camera without a living cell is ``pending``."""
        figures: dict[str, dict] = {}
        up = [c for c in self._cells.values() if c.state == "up"]
        replies = await asyncio.gather(*(self._call(c, "cameras") for c in up), return_exceptions=True)
        for cell, reply in zip(up, replies):
            if isinstance(reply, dict):
                figures.update({cid: f for cid, f in reply.items()
                                if cid in self._cameras and self._cameras[cid].cell == cell.name})
        found = []
        for camera in list(self._cameras.values()):
            entry = self._entry(camera)
            reported = figures.get(camera.id)
            if reported is None:
                waiting = "waiting for a living cell" if camera.cell is None else f"starting on {camera.cell}"
                entry.update(status="pending", detail=waiting)
            else:
                entry.update({k: v for k, v in reported.items() if k != "url"})
            found.append(entry)
        return found

    def _save(self) -> None:
        self._saved.save({c.id: c.url for c in self._cameras.values()}, self._numbered)

    def _entry(self, camera: _Camera) -> dict:
        return {"id": camera.id, "url": mask_credentials(camera.url), "cell": camera.cell}

    async def assignment(self) -> dict[str, str | None]:
        """camera id -> cell name (None: waiting for one)."""
        return {c.id: c.cell for c in self._cameras.values()}

    async def cells(self) -> list[dict]:
        """Every cell the controller knows: ``name, state, node, capacity`` (windows/s it sustains),
        ``demand`` (windows/s its cameras ask for), ``cameras``, and for a dead one ``detail`` (why)."""
        return [{"name": c.name, "state": c.state, "node": c.node, "capacity": round(c.capacity, 3),
                 "demand": round(c.demand_per_camera * self._load(c.name), 3), "cameras": self._load(c.name),
                 **({"detail": c.detail} if c.state == "dead" else {})}
                for c in self._cells.values()]

    # -- events ------------------------------------------------------------------------------
    async def events_since(self, seq: int) -> tuple[list[dict], int, int]:
        """``(events, next_seq, lost)`` of the merged log, as :meth:`CameraCell.events_since`. A ``seq``
        beyond the log's end is from a reader of this controller before a restart (the log is numbered
        from 0 again): it reads from the start of the new log."""
        if seq > self._next_seq:
            seq = 0
        first = self._log[0][0] if self._log else self._next_seq
        return [r for n, r in self._log if n >= seq], self._next_seq, max(0, first - seq)

    def _emit(self, record: dict) -> None:
        self._log.append((self._next_seq, record))
        self._next_seq += 1

    # -- placement ---------------------------------------------------------------------------
    def _load(self, cell_name: str) -> int:
        return sum(1 for c in self._cameras.values() if c.cell == cell_name)

    def _best_cell(self) -> _Cell | None:
        """The living cell with the most headroom (capacity - demand of its cameras), then fewest cameras."""
        up = [c for c in self._cells.values() if c.state == "up"]
        if not up:
            return None
        return max(up, key=lambda c: (c.capacity - c.demand_per_camera * self._load(c.name), -self._load(c.name),
                                      c.name))

    async def _place(self, camera: _Camera) -> None:
        """Give ``camera`` to the best living cell (or leave it waiting: the watch loop retries)."""
        cell = self._best_cell()
        camera.cell = None if cell is None else cell.name
        if cell is None:
            return
        try:
            await self._call(cell, "add_camera", camera.id, camera.url)
        except Exception as exc:  # the watch loop sees the cell's state and places the camera again
            log.warning("could not give %s to %s: %s", camera.id, cell.name, mask_credentials(str(exc)))

    async def _call(self, cell: _Cell, method: str, *args):
        return await asyncio.wait_for(getattr(cell.handle, method).remote(*args), self.config.cluster.health_timeout_s)

    # -- cells -------------------------------------------------------------------------------
    def _new_name(self, prefix: str) -> str:
        while True:
            self._numbered += 1
            name = f"{prefix}-{self._numbered}"
            if name not in self._cameras and name not in self._cells:
                self._save()  # a restarted controller does not hand the same name out again
                return name

    def _wanted_cells(self) -> int:
        import ray

        wanted = self.config.cluster.cells
        if wanted == 0:  # one per node that has room for one
            need = max(self.config.cluster.cell_cpus, 1e-9)
            wanted = sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= need)
        return max(wanted, 1)

    def _stop_previous_cells(self) -> None:
        """Kill the cells of an earlier life of this controller (Ray restarted it), if any are left."""
        import ray

        for name in ray.util.list_named_actors():
            if name.startswith(f"{CELL_ACTOR_PREFIX}cell-"):
                with contextlib.suppress(ValueError):  # gone meanwhile
                    ray.kill(ray.get_actor(name), no_restart=True)
                    log.info("stopped %s, a cell of the controller before its restart", name)

    def _start_cells(self) -> None:
        if time.monotonic() < self._next_start:  # backing off after cells that died while starting
            return
        from pipelines.cluster.cell import cell_actor

        actor = cell_actor(self.config)
        for name in [n for n, c in self._cells.items() if c.state == "dead"]:
            del self._cells[name]  # its cameras were placed elsewhere when it was lost
        for _ in range(self._wanted_cells() - len(self._cells)):
            name = self._new_name("cell")
            handle = actor.options(name=f"{CELL_ACTOR_PREFIX}{name}", scheduling_strategy="SPREAD").remote(
                self.config, name)
            self._cells[name] = _Cell(name, handle)
            log.info("starting %s", name)

    async def _watch(self) -> None:
        """The watch loop: keep the wanted number of cells, check each, collect events, re-place cameras."""
        interval = self.config.cluster.health_interval_s
        try:
            self._stop_previous_cells()
        except Exception:
            log.exception("could not look for the cells of an earlier controller")
        while True:
            try:
                self._start_cells()
                await asyncio.gather(*(self._check(c) for c in list(self._cells.values()) if c.state != "dead"))
                for camera in list(self._cameras.values()):
                    if camera.cell is None:
                        await self._place(camera)
            except Exception:  # never let the loop die: the next round tries again
                log.exception("cluster watch round failed")
            await asyncio.sleep(interval)

    async def _check(self, cell: _Cell) -> None:
        import ray

        if cell.state == "starting":  # loading its model: look without waiting, so the round goes on
            if cell.first_health is None:
                cell.first_health = cell.handle.health.remote()
            if not ray.wait([cell.first_health], timeout=0)[0]:
                return
        try:
            health = await (cell.first_health if cell.state == "starting" else self._call(cell, "health"))
        except ray.exceptions.ActorUnavailableError:  # restarting: Ray brings it back empty
            return self._overdue(cell)
        except ray.exceptions.RayActorError as exc:
            return self._lost(cell, f"it died ({type(exc).__name__}: {mask_credentials(str(exc))[:300]})")
        except asyncio.TimeoutError:
            return self._overdue(cell)
        cell.last_ok = time.monotonic()
        cell.node, cell.capacity = health["node"], health["capacity"]
        cell.demand_per_camera = health["demand_per_camera"]
        if cell.state == "starting":
            cell.state = "up"
            self._failed_starts = 0
            log.info("%s is up on %s: %.1f windows/s", cell.name, cell.node, cell.capacity)
        if cell.incarnation is not None and health["incarnation"] != cell.incarnation:
            cell.cursor = 0  # a restarted cell: a new event log, and none of its cameras
            for camera in self._cameras.values():
                if camera.cell == cell.name:
                    self._moving(camera, f"{cell.name} restarted")
        cell.incarnation = health["incarnation"]
        mine = {c.id: c for c in self._cameras.values() if c.cell == cell.name}
        for extra in set(health["cameras"]) - set(mine):  # removed, or moved while it did not answer
            await self._call(cell, "remove_camera", extra)
        for missing in set(mine) - set(health["cameras"]):  # giving it to the cell failed: again
            await self._call(cell, "add_camera", missing, mine[missing].url)
        await self._collect(cell)

    async def _collect(self, cell: _Cell) -> None:
        events, cell.cursor, lost = await self._call(cell, "events_since", cell.cursor)
        if lost:
            log.warning("%s: %d events left its log before they were collected", cell.name, lost)
        for record in events:
            if self._cameras.get(record["stream"]) is not None and self._cameras[record["stream"]].cell == cell.name:
                self._emit(record)

    def _overdue(self, cell: _Cell) -> None:
        if cell.state == "up" and time.monotonic() - cell.last_ok > self.config.cluster.health_timeout_s:
            import ray

            ray.kill(cell.handle, no_restart=True)  # so that it cannot serve its cameras on after they move
            self._lost(cell, f"no answer for {self.config.cluster.health_timeout_s:g} s")

    def _lost(self, cell: _Cell, why: str) -> None:
        log.warning("%s is gone: %s", cell.name, why)
        if cell.state == "starting":  # died before it ever served: a broken node or setup, not bad luck
            self._failed_starts += 1
            pause = min(START_BACKOFF_S[0] * 2 ** (self._failed_starts - 1), START_BACKOFF_S[1])
            self._next_start = time.monotonic() + pause
            why = f"{why}; {self._failed_starts} in a row died while starting: next cell in {pause:g} s"
        cell.state, cell.detail = "dead", why
        for camera in self._cameras.values():
            if camera.cell == cell.name:
                self._moving(camera, f"{cell.name} is gone: {why}")

    def _moving(self, camera: _Camera, why: str) -> None:
        """Mark ``camera`` for placement by the watch loop, and say so in the event stream."""
        camera.cell = None
        self._emit({"event": "status", "stream": camera.id, "status": "reconnecting",
                    "detail": f"{why}; moving to another cell"})


def controller_actor(config: Config):
    """The controller as a named, detached Ray actor (got if it exists) in ``cluster.namespace``."""
    import ray

    return ray.remote(ClusterController).options(
        name=CONTROLLER_NAME, namespace=config.cluster.namespace, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_restarts=-1)
