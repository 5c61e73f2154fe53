"""``tdn cluster up`` as a new user runs it first: a local Ray on loopback, started from an empty
HOME and TMPDIR in its own process (this test process never becomes a Ray driver), a camera added
with ``tdn cluster add``, and Ctrl-C stopping everything it started."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
psutil = pytest.importorskip("psutil")

from loopback import RtspServer, free_port  # noqa: E402

from tdn.config import REPO_ROOT  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
DEADLINE_S = 300.0  # a local Ray, a cell loading the model and Serve, on a loaded 2-core machine


def lines_of(stream) -> queue.Queue:
    """The lines of ``stream`` as they come, read on a thread."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def processes_with_home(home: str) -> list:
    """Every process started with HOME=``home``: what the command started, Ray's processes included."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("HOME") == home:
                found.append(process)
        except psutil.Error:  # ended meanwhile, or not ours to read
            continue
    return found


def test_cluster_up_from_a_clean_home_serves_a_camera_and_ctrl_c_stops_everything(tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    port = free_port()
    front_end = f"http://127.0.0.1:{port}"
    tdn = [sys.executable, "-m", "cli", "cluster"]
    settings = ["--set", f"cluster.port={port}", "--set", "pipeline.backend=cpu", "--set", "model.precision=fp32"]
    server = RtspServer(free_port()).start()
    up = subprocess.Popen([*tdn, *settings, "up"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        lines = lines_of(up.stdout)
        deadline = time.monotonic() + DEADLINE_S
        while not any("front end at" in line for line in output):
            assert up.poll() is None, "".join(output)[-3000:]
            assert time.monotonic() < deadline, f"no front end within {DEADLINE_S:g} s: {''.join(output)[-3000:]}"
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        assert f"tdn cluster: front end at {front_end}" in "".join(output)

        add = subprocess.run([*tdn, "add", server.url, "--name", "door", "--url", front_end], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert add.returncode == 0, add.stderr
        assert json.loads(add.stdout)["id"] == "door"
        while True:
            with urllib.request.urlopen(f"{front_end}/cameras", timeout=60) as response:
                camera = json.loads(response.read())["cameras"][0]
            if camera.get("predictions", 0) > 0:
                break
            assert time.monotonic() < deadline, f"camera not predicting: {camera}"
            time.sleep(1)
        assert camera["status"] == "live" and camera["topk"], camera

        started = processes_with_home(str(home))
        assert any(p.name() == "raylet" for p in started), [p.name() for p in started]
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(timeout=180) == 0, "".join(output)[-3000:]
        _, alive = psutil.wait_procs(processes_with_home(str(home)), timeout=60)
        assert not alive, [(p.pid, p.name()) for p in alive]  # Ray, its workers, the cell: all gone
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for process in processes_with_home(str(home)):
            process.kill()
        server.stop()
