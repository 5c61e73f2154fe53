"""Network sources against a real RTSP server on 127.0.0.1 (tests/rtsp_server.py, gst-rtsp-server)."""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from loopback import RtspServer, free_port
from pipelines.sources import LiveSource, open_source
from tdn.config import PipelineConfig

# short timeouts keep the tests quick; the behaviour is the same with the defaults
FAST = PipelineConfig(open_timeout_s=4.0, read_timeout_s=2.0, reconnect_initial_s=0.25, reconnect_max_s=1.0)


def wait_for_frames(source, count: int, timeout: float) -> list:
    """Frames read after this call, once ``count`` of them have arrived (fewer on timeout)."""
    start = source.stats().frames_read
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and source.stats().frames_read < start + count:
        time.sleep(0.05)
    return [f for f in source.buffer.snapshot() if f.index >= start]


def test_stream_delivers_rgb_frames_and_goes_live(rtsp_server):
    states = []
    with open_source(rtsp_server.url, config=FAST, on_status=lambda sid, st: states.append(st.state)) as src:
        assert src.wait_for_state({"live", "failed"}, timeout=10).state == "live"
        frames = wait_for_frames(src, 10, timeout=10)
        stats = src.stats()
    assert len(frames) >= 10
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert all(b.t > a.t and b.index == a.index + 1 for a, b in zip(frames, frames[1:]))
    assert stats.fps > 0  # a rate is reported; its value follows arrival times, which a loaded machine bunches
    assert states[0] == "live" and states[-1] == "ended"  # stop() ends a live source
    assert src.status.detail == "stopped"


def test_stream_reconnects_after_server_restart_on_the_same_port():
    server = RtspServer(free_port()).start()
    states = []
    src = open_source(server.url, config=FAST, on_status=lambda sid, st: states.append(st.state)).start()
    try:
        assert src.wait_for_state({"live"}, timeout=10).state == "live"
        assert wait_for_frames(src, 5, timeout=10)
        live_fps = src.stats().fps
        server.stop()
        assert src.wait_for_state({"reconnecting"}, timeout=FAST.read_timeout_s + 5).state == "reconnecting"
        time.sleep(1.5)  # several failed retries while the server is down (backoff capped at 1 s)
        assert src.status.state == "reconnecting"
        down = src.stats()
        read_while_down = down.frames_read
        # the outage runs from the newest frame on (before the 1.5 s sleep), and the capture rate
        # counts the silence instead of repeating the figure of before
        assert down.outages == 1 and down.current_outage_s >= 1.5 and down.outage_s == down.current_outage_s, down
        assert down.fps < live_fps, (down, live_fps)
        last_before = src.buffer.latest().t
        server.start()
        assert src.wait_for_state({"live"}, timeout=15).state == "live"
        resumed = wait_for_frames(src, 5, timeout=10)
        assert len(resumed) >= 5 and resumed[0].index >= read_while_down
        up = src.stats()
        assert up.reconnects == 1 and up.outages == 1 and up.current_outage_s is None, up
        first_after = next(f.t for f in src.buffer.snapshot() if f.index >= read_while_down)
        assert up.outage_s == pytest.approx(first_after - last_before, abs=1e-6), up
    finally:
        src.stop()
        server.stop()
    assert states[:3] == ["live", "reconnecting", "live"]


def test_unreachable_url_fails_in_bounded_time_with_masked_url():
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam"  # nothing listens there
    states = []
    src = open_source(url, config=FAST, on_status=lambda sid, st: states.append(st)).start()
    try:
        status = src.wait_for_state({"failed"}, timeout=FAST.open_timeout_s + 5)
    finally:
        src.stop()
    assert status.state == "failed"
    assert "rtsp://***@127.0.0.1" in status.detail and "hunter2" not in status.detail and "admin" not in status.detail
    assert src.name == src.stream_id and "hunter2" not in src.name
    assert [s.state for s in states] == ["failed"]


def test_credentials_open_the_stream_and_never_show():
    server = RtspServer(free_port(), user="viewer", password="s3cr3t-pw").start()
    try:
        good = LiveSource(server.url_with("viewer", "s3cr3t-pw"), open_timeout_s=4.0, read_timeout_s=2.0)
        with good:
            live = good.wait_for_state({"live", "failed"}, timeout=10)
            assert wait_for_frames(good, 3, timeout=10)
        bad = LiveSource(server.url_with("viewer", "wrong-pw"), open_timeout_s=2.0, read_timeout_s=2.0)
        with bad:
            failed = bad.wait_for_state({"failed"}, timeout=8)
    finally:
        server.stop()
    assert live.state == "live"
    assert failed.state == "failed"
    assert "rtsp://***@127.0.0.1" in good.name and "rtsp://***@127.0.0.1" in failed.detail
    for text in (live.detail, failed.detail, good.name, bad.name, good.stream_id):
        assert "s3cr3t-pw" not in text and "wrong-pw" not in text and "viewer" not in text


def test_credentials_absent_from_process_output_including_opencv_and_ffmpeg_logs():
    """Everything a failing source prints (Python logging at DEBUG, OpenCV and FFmpeg on stderr)."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "from pipelines.sources import LiveSource\n"
        f"src = LiveSource('rtsp://alice:Pa55word@127.0.0.1:{free_port()}/x', open_timeout_s=1.5).start()\n"
        "print(src.wait_for_state({'failed'}, 10))\n"
        "src.stop()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "failed" in text and "rtsp://***@127.0.0.1" in text
    assert "Pa55word" not in text and "alice" not in text


def test_status_log_lines_are_masked(caplog):
    caplog.set_level(logging.INFO, logger="pipelines.sources")
    src = LiveSource(f"rtsp://bob:topsecret@127.0.0.1:{free_port()}/x", open_timeout_s=0.5).start()
    src.wait_for_state({"failed"}, timeout=5)
    src.stop()
    assert "failed" in caplog.text and "topsecret" not in caplog.text


def test_silent_stream_times_out_and_recovers(rtsp_server):
    """A server that stops sending without closing the connection (SIGSTOP): the read timeout
    marks the stream lost; once the server runs again the source is live again."""
    src = open_source(rtsp_server.url, config=FAST).start()
    try:
        assert src.wait_for_state({"live"}, timeout=10).state == "live"
        rtsp_server.proc.send_signal(signal.SIGSTOP)
        try:
            assert src.wait_for_state({"reconnecting"}, timeout=FAST.read_timeout_s + 8).state == "reconnecting"
        finally:
            rtsp_server.proc.send_signal(signal.SIGCONT)
        assert src.wait_for_state({"live"}, timeout=20).state == "live"
        assert wait_for_frames(src, 5, timeout=10)
    finally:
        src.stop()
