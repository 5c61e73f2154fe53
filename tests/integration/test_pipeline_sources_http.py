"""HTTP sources against a real MJPEG server on 127.0.0.1 (multipart/x-mixed-replace, what most IP
cameras serve over HTTP)."""
from __future__ import annotations

import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from media import moving_square_frames
from pipelines.sources import open_source
from tdn.config import PipelineConfig

FAST = PipelineConfig(open_timeout_s=4.0, read_timeout_s=2.0, reconnect_initial_s=0.25, reconnect_max_s=1.0)
BOUNDARY = "frameboundary"


class MjpegCamera(ThreadingHTTPServer):
    """Serves ``/video.mjpg``: JPEG frames of a moving square at ``fps``, until shut down."""

    daemon_threads = True

    def __init__(self, fps: float = 25.0):
        self.fps = fps
        self.jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes()
                      for f in moving_square_frames(25)]
        self.stopping = threading.Event()
        self.frames_per_connection: int | None = None  # None: stream until shut down
        self.connected_at: list[float] = []  # time.monotonic() of each connection
        super().__init__(("127.0.0.1", 0), MjpegHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/video.mjpg"


class MjpegHandler(SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        camera: MjpegCamera = self.server
        if not self.path.startswith("/video.mjpg"):
            self.send_error(404)
            return
        camera.connected_at.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
        self.end_headers()
        i = 0
        try:
            while not camera.stopping.is_set() and i != camera.frames_per_connection:
                jpeg = camera.jpegs[i % len(camera.jpegs)]
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                 .encode() + jpeg + b"\r\n")
                i += 1
                time.sleep(1 / camera.fps)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def mjpeg_camera():
    camera = MjpegCamera()
    thread = threading.Thread(target=camera.serve_forever, daemon=True)
    thread.start()
    try:
        yield camera
    finally:
        camera.stopping.set()
        camera.shutdown()
        camera.server_close()
        thread.join(5)


def test_http_mjpeg_camera_goes_live_with_masked_query_credentials(mjpeg_camera):
    url = mjpeg_camera.url + "?user=admin&password=opensesame"
    with open_source(url, config=FAST) as src:
        status = src.wait_for_state({"live", "failed"}, timeout=10)
        deadline = time.monotonic() + 10
        while src.stats().frames_read < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        frames = src.buffer.snapshot()
    assert status.state == "live", status.detail
    assert len(frames) >= 10 and frames[-1].image.shape == (48, 64, 3)
    r, g, b = frames[-1].image.reshape(-1, 3).astype(int).T
    assert ((r > 180) & (g < 90) & (b < 90)).sum() >= 50  # RGB order: the red square is red, not blue
    assert np.diff([f.t for f in frames]).min() > 0
    assert src.name.endswith("video.mjpg?user=***&password=***") and "opensesame" not in status.detail


def test_a_server_that_keeps_dropping_the_stream_is_retried_with_backoff(mjpeg_camera):
    """Each connection gets 10 frames (0.4 s) and is closed: the source goes live, loses the stream,
    and waits 0.25, 0.5, 1, 2 s ... between reconnects (a session shorter than reconnect_max_s does
    not reset the delay) instead of hammering the server. The server's own clock says so: each
    connection starts at least that delay after the one before (a loaded machine only adds to it)."""
    mjpeg_camera.frames_per_connection = 10
    config = PipelineConfig(open_timeout_s=4.0, read_timeout_s=2.0, reconnect_initial_s=0.25, reconnect_max_s=4.0)
    with open_source(mjpeg_camera.url, config=config) as src:
        assert src.wait_for_state({"live", "failed"}, timeout=10).state == "live"
        deadline = time.monotonic() + 60
        while len(mjpeg_camera.connected_at) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling only; the deadline bounds the test
        starts = list(mjpeg_camera.connected_at[:5])
    assert len(starts) == 5, f"only {len(starts)} connections in 60 s"
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    for k, gap in enumerate(gaps):
        assert gap >= 0.9 * min(0.25 * 2 ** k, 4.0), f"reconnect {k + 1} came {gap:.2f} s after the last: {gaps}"
    assert src.stats().reconnects >= 3  # the fifth connection may still be opening


def test_a_server_that_never_sends_a_frame_fails_within_open_timeout(mjpeg_camera):
    """Connections succeed but close before any frame: that is a source that cannot be opened."""
    mjpeg_camera.frames_per_connection = 0
    with open_source(mjpeg_camera.url, config=FAST) as src:
        status = src.wait_for_state({"live", "failed"}, timeout=FAST.open_timeout_s + 8)
    assert status.state == "failed" and "no frames from http://127.0.0.1" in status.detail
    assert src.stats().frames_read == 0
