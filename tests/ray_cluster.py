"""A real Ray cluster of several nodes on this machine, for the cluster tests and benchmarks.

Each node is started as an operator would: ``ray start --head`` and ``ray start --address ...``,
each with ``num_cpus`` CPUs, on a loopback address (:data:`pipelines.cluster.deploy.LOOPBACK`:
Ray would turn 127.0.0.1 into the machine's own address), a 200 MB object store and no dashboard; Ray's files go to a fresh temporary folder. (``ray.cluster_utils.Cluster`` does the same in-process, but with
Ray 2.60 a driver that then connects from the same process waits forever for the GCS's cluster
id, so the nodes run as their own processes here.)

A raylet waits about 15 s for its agents to report their ports in files of its session folder
and aborts otherwise (Ray 2.60: not configurable). At the lowest priority on a shared, loaded
machine the agents' imports take longer than that (seen here: 45 s at ``nice 19``, load average
25). So each node gets its agents' ports chosen here (``--dashboard-agent-grpc-port`` ...), and
:class:`_PortFiles` writes those same numbers into the files the raylet waits for as soon as the
raylet exists; the agents bind those ports and write the same numbers when they are up. A node
that fails to start anyway is started again, up to ``START_ATTEMPTS`` times. On the way out every
process of the nodes is killed by its id (found by the temporary folder in its command line,
and the raylets' children), also after a failure.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from loopback import free_port

from pipelines.cluster.deploy import LOOPBACK

OBJECT_STORE_BYTES = 200 * 2**20
START_ATTEMPTS = 6
START_TIMEOUT_S = 300
RAY = str(Path(sys.executable).with_name("ray"))
# Serve restarts a proxy that does not answer its checks within 5 s (ready) / 10 s (health): on a
# loaded machine a healthy proxy can be that slow, so the nodes give it a minute
SLOW_MACHINE_ENV = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}


def _node_processes(temp: str, head_port: int) -> list:
    """Every process of the nodes under ``temp``: those naming it or the head's address (the Ray
    client server, which outlives the ``ray start`` that started it), and all their children."""
    import psutil

    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(temp in part or f"={LOOPBACK}:{head_port}" in part for part in process.info["cmdline"] or ()):
            found[process.pid] = process
            with contextlib.suppress(psutil.Error):
                found.update({child.pid: child for child in process.children(recursive=True)})
    return list(found.values())


def _kill(processes) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=30)


class _PortFiles(threading.Thread):
    """While a node starts: for each raylet under ``temp``, write its agents' ``ports`` (file name
    -> port) into its session folder, named as the raylet expects them, unless already there."""

    def __init__(self, temp: str, ports: dict[str, int]):
        super().__init__(daemon=True)
        self.temp, self.ports, self.done = temp, ports, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.wait(0.2):
            for process in psutil.process_iter(["name", "cmdline"]):
                args = process.info["cmdline"] or []
                if process.info["name"] != "raylet" or not any(self.temp in a for a in args):
                    continue
                flags = dict(a.lstrip("-").split("=", 1) for a in args if a.startswith("--") and "=" in a)
                if "session_dir" not in flags or "node_id" not in flags:
                    continue
                for name, port in self.ports.items():
                    path = Path(flags["session_dir"]) / f"{name}_{flags['node_id']}"
                    if not path.exists():
                        partial = path.with_name(f".{path.name}.partial")
                        partial.write_text(str(port))
                        partial.rename(path)


def _start_node(temp: str, num_cpus: int, head_port: int, auth: dict[str, str], *, head: bool) -> None:
    common = [f"--node-ip-address={LOOPBACK}", f"--num-cpus={num_cpus}", f"--object-store-memory={OBJECT_STORE_BYTES}",
              "--disable-usage-stats"]
    role = (["--head", f"--port={head_port}", "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
             f"--temp-dir={temp}"] if head else [f"--address={LOOPBACK}:{head_port}"])
    for attempt in range(1, START_ATTEMPTS + 1):
        ports = {"metrics_agent_port": free_port(), "metrics_export_port": free_port(),
                 "dashboard_agent_listen_port": free_port(), "runtime_env_agent_port": free_port()}
        agents = [f"--dashboard-agent-grpc-port={ports['metrics_agent_port']}",
                  f"--metrics-export-port={ports['metrics_export_port']}",
                  f"--dashboard-agent-listen-port={ports['dashboard_agent_listen_port']}",
                  f"--runtime-env-agent-port={ports['runtime_env_agent_port']}"]
        before = {p.pid for p in _node_processes(temp, head_port)}
        writer = _PortFiles(temp, ports)
        writer.start()
        try:
            result = subprocess.run([RAY, "start", *role, *common, *agents], capture_output=True, text=True,
                                    timeout=START_TIMEOUT_S, env={**os.environ, **SLOW_MACHINE_ENV, **auth, "RAY_TMPDIR": temp})
        finally:
            writer.done.set()
            writer.join()
        if result.returncode == 0:
            return
        if attempt == START_ATTEMPTS:
            raise RuntimeError(f"ray start failed {attempt} times; last: {result.stderr[-2000:]}")
        _kill([p for p in _node_processes(temp, head_port) if p.pid not in before])  # what this attempt left


@dataclass(frozen=True)
class RayNodes:
    """A running local cluster: its head's ``address``, and :meth:`processes` to find its processes."""

    address: str
    temp: str
    head_port: int

    def processes(self) -> list:
        return _node_processes(self.temp, self.head_port)


@contextlib.contextmanager
def local_ray_cluster(*, nodes: int = 2, num_cpus: int = 1, namespace: str = "tdn-test"):
    """Yield the :class:`RayNodes` of a Ray cluster of ``nodes`` nodes on loopback with this process
    connected to it (``ray.init``); Serve, the driver and every node are stopped on the way out."""
    import ray
    from ray import serve

    # a short path: Ray puts unix sockets under it (at most 107 characters)
    temp = tempfile.mkdtemp(prefix="tdnray_", dir="/tmp")
    head_port = free_port()
    # no token authentication (a loopback cluster of this machine's own processes), said explicitly:
    # a token that an earlier local ray.init left in ~/.ray would otherwise switch the nodes to it
    auth = {"RAY_AUTH_MODE": "disabled"}
    try:
        for n in range(nodes):
            _start_node(temp, num_cpus, head_port, auth, head=n == 0)
        address = f"{LOOPBACK}:{head_port}"
        ray.init(address=address, namespace=namespace, log_to_driver=False, _node_ip_address=LOOPBACK)
        yield RayNodes(address, temp, head_port)
    finally:
        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            ray.shutdown()
            _kill(_node_processes(temp, head_port))
            shutil.rmtree(temp, ignore_errors=True)
