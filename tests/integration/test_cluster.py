"""Cluster mode on a real Ray: two nodes on this machine (``ray start`` processes,
``tests/ray_cluster.py``, one CPU each), two camera cells on the bundled demo model, cameras from loopback
RTSP servers, and the HTTP front end on Ray Serve. One cluster for the whole module (starting Ray
is the slow part); the tests run in order: serve, kill a cell, add and remove over HTTP, clip uploads.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")

from loopback import RtspServer, free_port  # noqa: E402
from media import moving_square_frames, write_not_a_video, write_video  # noqa: E402
from ray_cluster import local_ray_cluster  # noqa: E402
from schema_check import assert_valid  # noqa: E402

from pipelines.cluster.controller import CONTROLLER_NAME  # noqa: E402
from tdn.config import REPO_ROOT, load_config  # noqa: E402

# starting two nodes, two cells and Serve takes minutes on a loaded 2-core machine; the first test pays for it
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
DEADLINE_S = 240.0  # generous: two cells load a model and calibrate on a shared 2-core machine
MOVE_DEADLINE_S = 30.0  # the bound for a dead cell's cameras to predict again elsewhere


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text) if text else ""
    except ValueError:
        return status, text


def wait_until(what: str, check, deadline_s: float = DEADLINE_S, every_s: float = 0.5):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    pytest.fail(f"not within {deadline_s:g} s: {what} (last: {last})")


@pytest.fixture(scope="module")
def servers():
    plain = RtspServer(free_port()).start()
    secret = RtspServer(free_port(), user="viewer", password="s3cret-pw").start()
    try:
        yield plain, secret
    finally:
        plain.stop()
        secret.stop()


@pytest.fixture(scope="module")
def cluster():
    """A 2-node Ray with the controller, two cells and the front end deployed: ``(front end URL,
    controller handle, RayNodes)``; torn down even on failure."""
    port = free_port()
    config = load_config(None, {"cluster.namespace": "tdn-test", "cluster.port": port, "cluster.cells": 0,
                                "cluster.health_interval_s": 0.5, "cluster.health_timeout_s": 10.0,
                                "cluster.cell_restarts": 0, "pipeline.backend": "cpu", "model.precision": "fp32",
                                "pipeline.open_timeout_s": 5.0, "pipeline.stats_interval_s": 0.5})
    with local_ray_cluster(nodes=2, namespace="tdn-test") as nodes:
        from pipelines.cluster import deploy

        url = deploy.deploy(config)
        controller = ray.get_actor(CONTROLLER_NAME, namespace="tdn-test")
        try:
            wait_until("both cells up",
                       lambda: sum(c["state"] == "up" for c in ray.get(controller.cells.remote())) == 2)
            yield url, controller, nodes
        finally:
            deploy.undeploy(config)


class EventReader:
    """Reads ``GET /events`` (following) on a thread into a list, as a client would."""

    def __init__(self, url: str):
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.response = urllib.request.urlopen(f"{url}/events", timeout=120)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.response:
                with self.lock:
                    self.events.append(json.loads(line))
        except (OSError, ValueError):
            pass  # the stream ended: the server went away
        except Exception:
            # close() pulls the response from under this loop (http.client then fails on its closed file,
            # e.g. AttributeError): expected while closing, a fault at any other time
            if not self.closing.is_set():
                raise

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.events)

    def close(self):
        self.closing.set()
        self.response.close()


def cell_cameras(controller) -> dict[str, list[str]]:
    """cell name -> the camera ids the cell itself says it serves (asked directly, not the controller)."""
    found = {}
    for cell in ray.get(controller.cells.remote()):
        if cell["state"] != "up":
            continue
        handle = ray.get_actor(f"tdn-{cell['name']}", namespace="tdn-test")
        found[cell["name"]] = ray.get(handle.camera_ids.remote())
    return found


def predictions_per_camera(url: str) -> dict[str, int]:
    status, state = http("GET", f"{url}/cameras")
    assert status == 200, state
    return {c["id"]: c.get("predictions", 0) for c in state["cameras"]}


def test_four_cameras_on_two_cells_then_one_cell_dies(cluster, servers):
    url, controller, _ = cluster
    plain, secret = servers
    reader = EventReader(url)
    try:
        cameras = {"cam-a": plain.url, "cam-b": plain.url, "cam-c": secret.url_with("viewer", "s3cret-pw"),
                   "cam-d": secret.url_with("viewer", "s3cret-pw")}
        for name, camera_url in cameras.items():
            status, entry = http("POST", f"{url}/cameras", {"url": camera_url, "name": name})
            assert status == 201, entry
            assert "s3cret" not in json.dumps(entry)
        # every camera predicts, each served by exactly one cell, the cells share them
        wait_until("every camera predicting", lambda: all(n > 0 for n in predictions_per_camera(url).values()))
        served = cell_cameras(controller)
        assert sorted(sum(served.values(), [])) == sorted(cameras), served
        status, state = http("GET", f"{url}/cameras")
        assert "s3cret" not in json.dumps(state)
        assert {c["id"]: c["cell"] for c in state["cameras"]} == ray.get(controller.assignment.remote())

        # kill one cell: its cameras predict again on the other one within 30 s
        assignment = ray.get(controller.assignment.remote())
        victim = max(sorted(served), key=lambda name: len(served[name]))  # placement follows measured capacity
        moved = sorted(served[victim])
        ray.kill(ray.get_actor(f"tdn-{victim}", namespace="tdn-test"), no_restart=True)
        killed = time.monotonic()

        def moved_and_predicting():
            now = ray.get(controller.assignment.remote())
            counts = predictions_per_camera(url)
            return all(now[c] not in (None, victim) for c in moved) and all(counts[c] > 0 for c in moved) and now

        now = wait_until("the dead cell's cameras predicting on another cell", moved_and_predicting,
                         deadline_s=MOVE_DEADLINE_S)
        assert time.monotonic() - killed <= MOVE_DEADLINE_S
        assert sorted(now) == sorted(assignment)  # the controller's camera list is unchanged
        served = cell_cameras(controller)
        assert sorted(sum(served.values(), [])) == sorted(cameras), served  # none lost, none twice
        kept = [c for c in cameras if c not in moved]
        assert all(now[c] == assignment[c] for c in kept)  # the others stayed where they were

        # the event stream: every line is a tdn stream --json event, the move is announced
        events = wait_until("predictions of every camera in GET /events", lambda: (
            lambda ev: ev if {e["stream"] for e in ev if e["event"] == "prediction"} >= set(cameras) else None)(
            reader.snapshot()))
        for event in events:
            assert_valid(event)
        assert any(e["event"] == "status" and e["stream"] in moved and e["status"] == "reconnecting"
                   and victim in e["detail"] for e in events)
        assert "s3cret" not in json.dumps(events)
    finally:
        reader.close()


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback  # ::ffff:127.0.0.2 too


def test_the_cluster_talks_over_loopback_only(cluster):
    """Every connection of the nodes' processes and of this driver is between loopback addresses, and
    no socket listens on the machine's own address (Ray's gRPC servers listen on every interface, a
    wildcard that Ray 2.60 has no setting for; what they talk to is checked above)."""
    import psutil

    _, _, nodes = cluster
    processes = [*nodes.processes(), psutil.Process()]
    assert len(processes) > 5, processes  # GCS, raylets, agents, workers: the search found the nodes
    connected, listening = [], []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:  # a worker that ended meanwhile
            continue
        for c in connections:
            if c.status == psutil.CONN_LISTEN:
                listening.append((process.name(), c.laddr.ip))
            elif c.raddr:
                connected.append((process.name(), c.laddr.ip, c.raddr.ip))
    assert connected, "no connection seen: the cluster is not running?"
    assert all(_is_loopback(local) and _is_loopback(remote) for _, local, remote in connected), connected
    wildcard = {"0.0.0.0", "::"}
    assert all(ip in wildcard or _is_loopback(ip) for _, ip in listening), listening


def test_a_restarted_controller_keeps_its_cameras_and_serves_them_again(cluster):
    """The controller's process dies (``ray.kill`` without ``no_restart``: Ray restarts it): the new
    one has the same camera list from Ray's key-value store, stops the old cells, starts new ones
    and every camera predicts again, each on exactly one cell."""
    url, controller, _ = cluster
    before = ray.get(controller.assignment.remote())
    old_cells = {c["name"] for c in ray.get(controller.cells.remote())}
    assert len(before) == 4, before

    def answering():
        try:
            return ray.get(controller.assignment.remote(), timeout=10)
        except (ray.exceptions.RayError, TimeoutError):  # restarting
            return None

    reader = EventReader(url)  # a client following /events across the restart
    wait_until("events arriving", reader.snapshot)
    answers = []  # (status, body) of the front end, asked all through the restart

    def every_camera_predicting_on_a_new_cell():
        answers.append(http("GET", f"{url}/cameras"))
        status, state = answers[-1]
        return status == 200 and all(
            c["status"] == "live" and c["cell"] not in old_cells and c.get("predictions", 0) > 0
            for c in state["cameras"])

    seen_before_kill = len(reader.snapshot())
    ray.kill(controller, no_restart=False)
    wait_until("every camera predicting on a new cell", every_camera_predicting_on_a_new_cell, every_s=0.05)
    after = wait_until("the restarted controller answering", answering)
    assert sorted(after) == sorted(before)  # the same cameras, nothing added or lost
    # while the controller was away the front end said so, with when to retry: never a bare 500
    for status, state in answers:
        assert status == 200 or (status == 503 and "controller is not answering" in state["error"]), (status, state)
    # the follower goes on with the new controller's log from its start (it is numbered from 0
    # again): it sees every camera go live on its new cell
    wait_until("the follower seeing every camera live again", lambda: {
        e["stream"] for e in reader.snapshot()[seen_before_kill:]
        if e["event"] == "status" and e["status"] == "live"} >= set(before), deadline_s=30)
    reader.close()
    served = cell_cameras(controller)
    assert sorted(sum(served.values(), [])) == sorted(before), served  # none lost, none twice
    assert old_cells.isdisjoint(served)
    named = ray.util.list_named_actors()
    assert not any(f"tdn-{cell}" in named for cell in old_cells), named  # the old cells were stopped


def test_add_and_remove_over_http_bad_url_fails_alone(cluster, servers):
    url, controller, _ = cluster
    plain, _ = servers
    refused_port = free_port()  # nothing listens there
    status, entry = http("POST", f"{url}/cameras", {"url": f"rtsp://127.0.0.1:{refused_port}/nothing", "name": "bad"})
    assert status == 201, entry

    def bad_failed():
        cams = {c["id"]: c for c in http("GET", f"{url}/cameras")[1]["cameras"]}
        return cams["bad"] if cams["bad"]["status"] == "failed" else None

    bad = wait_until("the refused camera reported failed", bad_failed)
    assert "refused" in bad["detail"], bad
    # the others keep predicting
    counts = predictions_per_camera(url)
    wait_until("the others still predicting", lambda: all(
        n > counts[c] for c, n in predictions_per_camera(url).items() if c != "bad"))

    # malformed input is refused with a clear message
    status, reply = http("POST", f"{url}/cameras", {"url": "not a url"})
    assert status == 400 and "url" in reply["error"].lower(), reply
    status, reply = http("POST", f"{url}/cameras", {"url": plain.url, "name": "cam-a"})
    assert status == 400 and "already in use" in reply["error"], reply
    status, reply = http("DELETE", f"{url}/cameras/no-such-camera")
    assert status == 404 and "no-such-camera" in reply["error"], reply

    # add one without a name, then remove it and the bad one: gone from the list and from every cell
    status, entry = http("POST", f"{url}/cameras", {"url": plain.url})
    assert status == 201 and entry["id"].startswith("cam-"), entry
    wait_until("the new camera predicting", lambda: predictions_per_camera(url).get(entry["id"], 0) > 0)
    for camera_id in (entry["id"], "bad"):
        status, _ = http("DELETE", f"{url}/cameras/{camera_id}")
        assert status == 204
    assert {"bad", entry["id"]}.isdisjoint(predictions_per_camera(url))
    wait_until("no cell serving the removed cameras", lambda: {"bad", entry["id"]}.isdisjoint(
        sum(cell_cameras(controller).values(), [])))

    # the command line is a client of the same API
    tdn = [sys.executable, "-m", "cli", "cluster"]
    status = subprocess.run([*tdn, "status", "--json", "--url", url], capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT)
    assert status.returncode == 0, status.stderr
    assert {c["id"] for c in json.loads(status.stdout)["cameras"]} >= {"cam-a", "cam-b", "cam-c", "cam-d"}
    events = subprocess.run([*tdn, "events", "--json", "--duration", "5", "--url", url], capture_output=True,
                            text=True, timeout=300, cwd=REPO_ROOT)
    assert events.returncode == 0, events.stderr
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert any(e["event"] == "prediction" for e in lines)
    for event in lines:
        assert_valid(event)

    # the polling form of /events: a finite answer, and where to go on
    with urllib.request.urlopen(f"{url}/events?follow=false&stats=true", timeout=60) as response:
        lines = [json.loads(line) for line in response.read().decode().splitlines()]
        assert int(response.headers["X-Next-Event"]) >= len(lines)
    assert lines and any(e["event"] == "stats" for e in lines)
    for event in lines:
        assert_valid(event)



def upload(url: str, path) -> tuple[int, dict]:
    """``POST /predict`` with the file as the body, as ``curl --data-binary`` sends it."""
    request = urllib.request.Request(f"{url}/predict", data=path.read_bytes(), method="POST",
                                     headers={"Content-Type": "application/octet-stream", "X-Filename": path.name})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_clip_uploads_over_http_are_scored_together_and_a_bad_one_fails_alone(cluster, tmp_path):
    url, _, _ = cluster
    labels = (REPO_ROOT / "weights" / "demo" / "labels.txt").read_text().split("\n")
    clips = [write_video(tmp_path / f"square{i}.mp4", moving_square_frames(50 + 10 * i, width=160, height=120))
             for i in range(3)]
    bad = write_not_a_video(tmp_path / "notes.mp4")
    results: dict[str, tuple[int, dict]] = {}
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(p.name, upload(url, p))) for p in [*clips, bad]]
    for thread in threads:  # at once: Serve batches them
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for clip in clips:
        status, record = results[clip.name]
        assert status == 200 and record["source"] == clip.name, record
        assert len(record["topk"]) == 5 and all(entry["label"] in labels for entry in record["topk"])
        assert 5 / 9 - 1e-4 <= sum(entry["score"] for entry in record["topk"]) <= 1 + 1e-4  # top 5 of 9 softmax scores
    status, record = results[bad.name]
    assert status == 400 and record["source"] == bad.name and str(tmp_path) not in record["error"], record
    status, record = http("POST", f"{url}/predict")
    assert status == 400 and "video file" in record["error"], record

def test_app_with_cluster_shows_its_cameras_live_in_chromium(cluster, servers):
    """``tdn app --cluster URL``: the Cameras tab lists every camera of the cluster with its cell and
    label, and a camera added to the cluster meanwhile appears without reloading the page."""
    from pathlib import Path

    from browser import CHROMIUM, chromium, open_page, screenshot

    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (make system-deps)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from app.ui import launch

    url, _, _ = cluster
    plain, _ = servers
    status, entry = http("POST", f"{url}/cameras", {"url": plain.url, "name": "cam-view"})
    assert status == 201, entry
    config = load_config(None, {"app.port": free_port(), "app.refresh_s": 0.5, "pipeline.backend": "cpu",
                                "model.precision": "fp32"})
    demo, host = launch(config, prevent_thread_lock=True, quiet=True, cluster_url=url)
    try:
        with sync_api.sync_playwright() as playwright, chromium(playwright) as browser, \
                open_page(browser, f"http://127.0.0.1:{config.app.port}/") as page:
            page.get_by_role("tab", name="Cameras").click()
            table = page.locator("#cluster-cameras")
            ids = [camera["id"] for camera in http("GET", f"{url}/cameras")[1]["cameras"]]  # all of the cluster's

            def shown() -> set[str]:
                """The words of the table as the page shows it now (hidden copies left out)."""
                return set(table.inner_text().split())

            wait_until("every camera of the cluster in the page, live", lambda: set(ids) | {"live"} <= shown())
            status, entry = http("POST", f"{url}/cameras", {"url": plain.url, "name": "cam-late"})
            assert status == 201, entry
            wait_until("cam-late added while the page stays open", lambda: "cam-late" in shown())
            page.locator("#cluster-summary").get_by_text("cell-").first.wait_for()
            screenshot(page, "cluster_cameras.png")
            assert "s3cret" not in page.content()
    finally:
        demo.close()
        host.close()
        for camera_id in ("cam-view", "cam-late"):
            http("DELETE", f"{url}/cameras/{camera_id}")
