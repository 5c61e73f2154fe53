"""The cluster's HTTP front end, a Ray Serve deployment over the controller:

- ``POST /cameras`` ``{"url": ..., "name": optional}`` -> 201 and the camera's entry; 400 and
  ``{"error": ...}`` for a malformed URL or a name that is malformed or taken
- ``DELETE /cameras/{id}`` -> 204; 404 for an unknown id
- ``GET /cameras`` -> ``{"cameras": [...], "cells": [...]}`` (see
  :meth:`~pipelines.cluster.controller.ClusterController.cameras` and ``cells``)
- ``GET /events`` -> JSON lines, the same events as ``tdn stream --json`` for every camera
  (``docs/events.schema.json``), following new ones until the client goes (``follow=false``:
  only those logged now). ``since=N`` starts at event number N (default: the oldest kept);
  ``stats=true`` adds the stats events. The header ``X-Next-Event`` says where the next read
  starts, for clients that poll.
- ``POST /predict`` (a video file as the body) -> ``{"source": ..., "topk": [...]}`` as ``tdn
  predict --json``; uploads are batched across requests by a :class:`ClipScorer` replica.

URLs in every answer are masked (the controller never hands out a URL in clear). While the
controller is not answering (Ray restarts it when its process dies) requests get 503 with
``Retry-After``; a following ``/events`` reader waits and goes on with the restarted controller's log.
(No ``from __future__ import annotations`` here: FastAPI reads the handlers' annotations, and
``Request`` given as a string would be taken for a query parameter.)
"""

import asyncio
import json
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import RayActorError, RayTaskError

from pipelines.cluster.controller import CONTROLLER_NAME
from pipelines.masking import mask_credentials
from tdn.config import Config

EVENT_POLL_S = 0.25  # how often a following /events reader asks the controller for new events
RETRY_AFTER_S = 2  # what a 503 tells a client while the controller is restarting
LIVE_KINDS = frozenset({"prediction", "label_change", "status", "error"})  # as tdn stream --json; stats on request

api = FastAPI(title="TDN cluster")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": mask_credentials(message)}, status_code=status)


@api.exception_handler(RayActorError)
async def _controller_unavailable(request: Request, exc: RayActorError) -> JSONResponse:
    """503 for any request that met the controller dead or restarting, instead of a bare 500."""
    return JSONResponse({"error": f"the cluster controller is not answering ({type(exc).__name__}): Ray restarts "
                                  f"it if its process died; try again in {RETRY_AFTER_S} s"},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _refusal(exc: RayTaskError) -> str | None:
    """The controller's message when it refused a request (a ValueError), else None."""
    return str(exc.cause) if isinstance(exc.cause, ValueError) else None


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class FrontEnd:
    """Answers HTTP by asking the controller (found by name in the cluster's namespace)."""

    def __init__(self, config: Config, scorer=None):
        import ray

        self.controller = ray.get_actor(CONTROLLER_NAME, namespace=config.cluster.namespace)
        self.scorer = scorer

    @api.post("/cameras")
    async def add_camera(self, request: Request):
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body {\"url\": ..., \"name\": optional}")
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return _error(400, "expected a JSON body {\"url\": ..., \"name\": optional} with url a string")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            return _error(400, f"name must be a string, got {name!r}")
        try:
            entry = await self.controller.add_camera.remote(body["url"], name)
        except RayTaskError as exc:
            if (message := _refusal(exc)) is None:
                raise
            return _error(400, message)
        return JSONResponse(entry, status_code=201)

    @api.delete("/cameras/{camera_id}")
    async def remove_camera(self, camera_id: str):
        try:
            await self.controller.remove_camera.remote(camera_id)
        except RayTaskError as exc:
            if (message := _refusal(exc)) is None:
                raise
            return _error(404, message)
        return Response(status_code=204)

    @api.get("/cameras")
    async def cameras(self):
        cameras, cells = await asyncio.gather(self.controller.cameras.remote(), self.controller.cells.remote())
        return {"cameras": cameras, "cells": cells}

    @api.get("/events")
    async def events(self, since: int | None = None, follow: bool = True, stats: bool = False):
        kinds = LIVE_KINDS | ({"stats"} if stats else set())
        if since is None or since < 0:
            since = 0
        if not follow:
            events, next_seq, _ = await self.controller.events_since.remote(since)
            body = "".join(json.dumps(e, allow_nan=False) + "\n" for e in events if e["event"] in kinds)
            return Response(body, media_type="application/x-ndjson", headers={"X-Next-Event": str(next_seq)})

        async def lines():
            seq = since
            while True:
                try:
                    events, seq, _ = await self.controller.events_since.remote(seq)
                except RayActorError:  # restarting: wait for it, then read its new log
                    await asyncio.sleep(RETRY_AFTER_S)
                    continue
                for event in events:
                    if event["event"] in kinds:
                        yield json.dumps(event, allow_nan=False) + "\n"
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @api.post("/predict")
    async def predict(self, request: Request):
        if self.scorer is None:
            return _error(503, "clip prediction is not deployed in this cluster")
        body = await request.body()
        if not body:
            return _error(400, "expected a video file as the request body")
        name = request.headers.get("x-filename", "upload")
        result = await self.scorer.score.remote(body, Path(name).name)
        if "error" in result:
            return JSONResponse(result, status_code=400)
        return result


@serve.deployment(ray_actor_options={"num_cpus": 0})
class ClipScorer:
    """Scores uploaded clips (``tdn predict``'s 1x1 protocol) with one model; uploads that arrive
    together are batched by Serve (``cluster.predict_batch``, ``cluster.predict_wait_ms``) and their
    views go through the model together (:func:`pipelines.clip.predict_clips`)."""

    def __init__(self, config: Config):
        import torch

        from pipelines.service import RecognitionService
        from tdn.export import CLIP_PARTS

        torch.set_num_threads(config.cluster.torch_threads)
        self.service = RecognitionService(config)  # no streams: its engine and model for clips
        self.service.compile_ahead(parts=CLIP_PARTS)  # so a batch of uploads of a new size does not wait for one
        self.score_batch = serve.batch(max_batch_size=config.cluster.predict_batch,
                                       batch_wait_timeout_s=config.cluster.predict_wait_ms / 1000)(self._score_batch)

    def __del__(self):
        """Serve's graceful shutdown of the replica: close the service, which waits for a compile under
        way (OpenVINO aborts the process if it exits mid-compile)."""
        service = getattr(self, "service", None)  # None if __init__ failed
        if service is not None:
            service.close()

    async def score(self, data: bytes, name: str) -> dict:
        """``{"source": name, "topk": [...]}`` (and ``"warning"``), or ``{"source", "error"}``."""
        return await self.score_batch((data, name))

    async def _score_batch(self, uploads: list[tuple[bytes, str]]) -> list[dict]:
        from pipelines.clip import predict_clips

        with tempfile.TemporaryDirectory(prefix="tdn_predict_") as folder:
            paths = []
            for i, (data, name) in enumerate(uploads):
                path = Path(folder) / f"{i}_{name}"
                path.write_bytes(data)
                paths.append(path)
            results = await asyncio.to_thread(predict_clips, self.service.engine, paths,
                                              limit_mb=self.service.config.pipeline.clip_memory_mb)
        records = []
        for (_, name), path, result in zip(uploads, paths, results):
            if isinstance(result, Exception):
                records.append({"source": name, "error": str(result).replace(str(path), name)})
                continue
            record = {"source": name, "topk": self.service.topk(result.scores)}
            if result.warning:
                record["warning"] = result.warning
            records.append(record)
        return records
