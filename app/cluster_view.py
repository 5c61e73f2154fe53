"""The cluster panel of the Cameras tab (``tdn app --cluster http://HOST:PORT``): every camera of a
cluster, live, read from its HTTP front end (``GET /cameras``, ``GET /events``; docs/cluster.md).
Frames stay in the cluster's cells, so the panel shows figures and labels, not images. No Ray here:
the front end is plain HTTP.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import deque

import gradio as gr

from pipelines.masking import mask_credentials

HTTP_TIMEOUT_S = 5.0
RECENT_EVENTS = 12  # label changes and status changes listed under the table
COLUMNS = ["camera", "cell", "status", "fps", "predictions/s", "latency p95 (ms)", "dropped windows", "top-1"]


class ClusterClient:
    """The front end at ``url``; each call raises ValueError saying what went wrong."""

    def __init__(self, url: str):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--cluster expects the front end's http(s) URL, e.g. http://127.0.0.1:8470; got {url!r}")
        self.url = url.rstrip("/")

    def _get(self, path: str):
        try:
            return urllib.request.urlopen(f"{self.url}{path}", timeout=HTTP_TIMEOUT_S)
        except (urllib.error.URLError, OSError) as exc:
            raise ValueError(f"cluster front end {mask_credentials(self.url)} not reachable: "
                             f"{getattr(exc, 'reason', exc)}") from None

    def state(self) -> dict:
        """``{"cameras": [...], "cells": [...]}``."""
        with self._get("/cameras") as response:
            return json.loads(response.read())

    def events_since(self, since: int) -> tuple[list[dict], int]:
        """The events logged from number ``since`` on, and the number to ask for next."""
        with self._get(f"/events?follow=false&since={since}") as response:
            lines = response.read().decode().splitlines()
            return [json.loads(line) for line in lines], int(response.headers["X-Next-Event"])

    def add_camera(self, url: str) -> dict:
        request = urllib.request.Request(f"{self.url}/cameras", data=json.dumps({"url": url}, allow_nan=False).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(json.loads(exc.read()).get("error", exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ValueError(f"cluster front end not reachable: {getattr(exc, 'reason', exc)}") from None


def camera_rows(state: dict) -> list[list]:
    """One table row per camera (``COLUMNS``)."""
    rows = []
    for cam in state["cameras"]:
        top = f"{cam['topk'][0]['label']} {cam['topk'][0]['score']:.2f}" if cam.get("topk") else cam.get("detail", "")
        p95 = cam.get("latency_ms_p95")
        rows.append([cam["id"], cam["cell"] or "-", cam["status"], round(cam.get("fps", 0.0), 1),
                     round(cam.get("prediction_rate", 0.0), 2), "-" if p95 is None else round(p95),
                     cam.get("dropped_windows", 0), top])
    return rows


def cells_summary(state: dict) -> str:
    cells = ", ".join(f"{c['name']} ({c['state']}, {c['cameras']} cameras, {c['capacity']:.1f} windows/s)"
                      for c in state["cells"]) or "none yet"
    return f"**Cluster:** {len(state['cameras'])} cameras on cells: {cells}"


def event_line(event: dict) -> str:
    if event["event"] == "label_change":
        return f"{event['stream']}: {event['from']} → {event['to']} ({event['score']:.2f})"
    return f"{event['stream']}: {event['status']}: {event['detail']}"


def cluster_panel(url: str, refresh_s: float) -> None:
    """Inside the Cameras tab's ``gr.Blocks`` context: the cluster's cameras table, refreshed every ``refresh_s``."""
    client = ClusterClient(url)
    gr.Markdown(f"### Cluster cameras ({mask_credentials(client.url)})")
    with gr.Row():
        camera_url = gr.Textbox(label="Add a camera to the cluster", placeholder="rtsp://user:pass@host:554/stream",
                                scale=4, elem_id="cluster-camera-url")
        add = gr.Button("Add to cluster", scale=1, elem_id="cluster-add")
    message = gr.Markdown(elem_id="cluster-message")
    summary = gr.Markdown("connecting to the cluster…", elem_id="cluster-summary")
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, elem_id="cluster-cameras")
    recent = gr.Markdown(elem_id="cluster-events")
    cursor = gr.State(0)
    lines = gr.State(None)

    def refresh(since: int, shown: deque | None):
        shown = shown if shown is not None else deque(maxlen=RECENT_EVENTS)
        try:
            state = client.state()
            events, since = client.events_since(since)
        except ValueError as exc:
            return f"⚠️ {exc}", gr.skip(), gr.skip(), since, shown
        shown.extend(event_line(e) for e in events if e["event"] in ("label_change", "status"))
        return cells_summary(state), camera_rows(state), "\n".join(f"- {line}" for line in reversed(shown)), \
            since, shown

    def on_add(text: str):
        try:
            entry = client.add_camera(text.strip())
        except ValueError as exc:
            return gr.update(), f"⚠️ {mask_credentials(str(exc))}"
        return "", f"added {entry['id']} ({entry['url']})"

    add.click(on_add, camera_url, [camera_url, message])
    gr.Timer(refresh_s).tick(refresh, [cursor, lines], [summary, table, recent, cursor, lines],
                             show_progress="hidden", concurrency_limit=None)
