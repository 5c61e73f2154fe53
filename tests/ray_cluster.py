"""A real Ray cluster of simulated nodes on this machine, for the cluster tests and benchmarks.

``ray.cluster_utils.Cluster`` (what Ray's own tests use) starts a head and worker nodes as
separate raylets on 127.0.0.1, each with ``num_cpus`` CPUs, a small object store and no
dashboard; Ray's files go to a fresh temporary folder that is removed afterwards. Each node's
raylet gives its dashboard agent about 15 s to report its ports and aborts otherwise; on a
loaded machine the agent's imports can take longer, so a node that times out is started again
(its processes killed first), up to ``START_ATTEMPTS`` times.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

OBJECT_STORE_BYTES = 200 * 2**20
START_ATTEMPTS = 4


def _add_node(cluster, num_cpus: int) -> None:
    """Start one node (the head first) on loopback; again after a startup timeout."""
    import psutil

    for attempt in range(1, START_ATTEMPTS + 1):
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        try:
            cluster.add_node(num_cpus=num_cpus, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                             node_ip_address="127.0.0.1")
            return
        except Exception as exc:  # Ray raises a bare Exception for a node that did not come up
            if "timed out during startup" not in str(exc) or attempt == START_ATTEMPTS:
                raise
            for process in psutil.Process().children(recursive=True):
                if process.pid not in before:  # what this attempt started
                    process.kill()


@contextlib.contextmanager
def local_ray_cluster(*, nodes: int = 2, num_cpus: int = 1, namespace: str = "tdn-test"):
    """Yield a ``ray.cluster_utils.Cluster`` of ``nodes`` nodes with this process connected to it;
    Serve, the driver and every node are shut down on the way out, also after a failure."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    # a short path: Ray puts unix sockets under it (at most 107 characters)
    temp = tempfile.mkdtemp(prefix="tdnray_", dir="/tmp")
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    cluster = None
    try:
        cluster = Cluster(initialize_head=False)
        for _ in range(nodes):
            _add_node(cluster, num_cpus)
        ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
        yield cluster
    finally:
        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            ray.shutdown()
            if cluster is not None:
                cluster.shutdown()
            if previous is None:
                os.environ.pop("RAY_TMPDIR", None)
            else:
                os.environ["RAY_TMPDIR"] = previous
            shutil.rmtree(temp, ignore_errors=True)
