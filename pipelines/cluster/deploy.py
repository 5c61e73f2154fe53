"""Starting or joining Ray, and deploying the controller, its cells and the HTTP front end.

A local Ray (``cluster.address`` null) runs on loopback (:data:`LOOPBACK`) with ``cluster.local_cpus`` CPUs, a small
object store (``cluster.object_store_mb``: frames never go through it) and no dashboard.
"""
from __future__ import annotations

import tempfile
import time

import ray
from ray import serve

from pipelines.cluster.controller import CONTROLLER_NAME, SavedCameras, controller_actor
from pipelines.cluster.frontend import ClipScorer, FrontEnd
from tdn.config import Config

APP_NAME = "tdn"
# Ray replaces 127.0.0.1 and "localhost" by the machine's own address wherever it is given as a node's
# address (ray._private.services.resolve_ip_for_localhost), so its traffic would leave loopback; any
# other 127.x.y.z is taken as written and stays on the loopback interface (Linux routes all of 127/8 there)
LOOPBACK = "127.0.0.2"
# Ray puts unix sockets at <temp>/ray/session_<date>_<time>_<id>_<pid>/sockets/plasma_store: 66
# characters after <temp> with a 4-digit pid (70 leaves room for longer ones); a socket path may have 107
RAY_TEMP_MAX_CHARS = 107 - 70


def ray_temp_dir() -> str:
    """The folder a local Ray keeps its session in: the temp folder, or /tmp where the temp folder's
    path is too long for the unix sockets Ray makes in it."""
    temp = tempfile.gettempdir()
    return temp if len(temp) <= RAY_TEMP_MAX_CHARS else "/tmp"


def connect(config: Config) -> None:
    """Join the Ray cluster at ``cluster.address``, or start a local one (loopback only)."""
    c = config.cluster
    if c.address is not None:
        ray.init(address=c.address, namespace=c.namespace, log_to_driver=False)
        return
    ray.init(num_cpus=c.local_cpus, object_store_memory=c.object_store_mb * 2**20, include_dashboard=False,
             _node_ip_address=LOOPBACK, _temp_dir=ray_temp_dir(), namespace=c.namespace, log_to_driver=False)


def deploy(config: Config, *, wait_cells_s: float = 300.0) -> str:
    """Start (or find) the controller, wait until its first cell is up (at most ``wait_cells_s``),
    and serve the front end on ``cluster.host:cluster.port``; returns the front end's URL."""
    c = config.cluster
    controller = controller_actor(config).remote(config)  # it starts its cells and its watch loop itself
    deadline = time.monotonic() + wait_cells_s
    while not any(cell["state"] == "up" for cell in ray.get(controller.cells.remote())):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no camera cell came up within {wait_cells_s:g} s; cells: "
                               f"{ray.get(controller.cells.remote())}")
        time.sleep(0.5)
    serve.start(http_options={"host": c.host, "port": c.port}, proxy_location="HeadOnly")
    serve.run(FrontEnd.bind(config, ClipScorer.bind(config)), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{c.host}:{c.port}"


def undeploy(config: Config) -> None:
    """Remove the front end, the controller (its cells go with it: the controller owns them) and the
    camera list it kept for its restarts."""
    serve.delete(APP_NAME)
    try:
        ray.kill(ray.get_actor(CONTROLLER_NAME, namespace=config.cluster.namespace), no_restart=True)
    except ValueError:  # no controller
        pass
    SavedCameras(config.cluster.namespace).forget()
