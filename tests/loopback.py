"""Real servers on 127.0.0.1 for the tests and benchmarks: free loopback ports and ``RtspServer``.

The RTSP server is ``tests/rtsp_server.py`` (GStreamer's gst-rtsp-server), which needs Debian's
``python3-gi`` and so runs under the system Python as a subprocess; ``make system-deps``
installs what it needs.
"""
from __future__ import annotations

import select
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """Controls one ``tests/rtsp_server.py`` process on a fixed port; can be stopped and started again.

    ``url`` has no credentials; ``url_with(user, password)`` adds them.
    """

    def __init__(self, port: int, *, path: str = "/test", user: str | None = None, password: str | None = None,
                 fps: int = 25, width: int = 64, height: int = 48):
        self.port = port
        self.path = path
        self.args = ["--port", str(port), "--path", path, "--fps", str(fps), "--width", str(width),
                     "--height", str(height)]
        if user is not None:
            self.args += ["--user", user, "--password", password]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def url_with(self, user: str, password: str) -> str:
        return f"rtsp://{user}:{password}@127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 20.0) -> RtspServer:
        """Launch the server and wait for its ``READY`` line (the port is bound then)."""
        assert self.proc is None, "server already running"
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER_SCRIPT), *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return self
            if self.proc.poll() is not None:
                break
        err = self.stop()
        raise RuntimeError(f"RTSP test server did not start on port {self.port} (needs {SYSTEM_PYTHON} with "
                           f"python3-gi and gir1.2-gst-rtsp-server-1.0: make system-deps): {err}")

    def stop(self) -> str:
        """Terminate the server (its port closes); returns what it wrote to stderr."""
        if self.proc is None:
            return ""
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        return err
