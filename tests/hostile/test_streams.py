"""Hostile streams, URLs and camera indices: each bad source ends in the exact state with a reason
naming what was wrong, within a bounded time, while a good RTSP stream keeps delivering frames
and clips still decode (issue 11: no crash, no stall).

Everything runs on 127.0.0.1 (``tests/hostile_servers.py``, ``tests/rtsp_server.py``); host names
end in ``.invalid``, which never resolves. Waits are on states and counts with generous bounds.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pytest

from app.inputs import parse_camera_source
from loopback import RtspServer, free_port
from hostile_servers import HostileServer
from media import moving_square_frames, write_video
from pipelines.buffer import FrameBuffer
from pipelines.clip import read_frames
from pipelines.sources import LiveSource, describe_source, open_source
from tdn.config import PipelineConfig

BAD = PipelineConfig(open_timeout_s=2.0, read_timeout_s=2.0, reconnect_initial_s=0.25, reconnect_max_s=1.0)
HANGING = PipelineConfig(open_timeout_s=8.0, read_timeout_s=2.0)  # an open that hangs for the whole test
BOUND_S = 15.0  # generous bound on any wait for a state
MAX_GAP_S = 1.0  # the good stream sends a frame every 40 ms


@pytest.fixture(scope="module")
def good():
    """A live source on a loopback RTSP server (25 fps), shared by the module; ``good.server``."""
    server = RtspServer(free_port()).start()
    src = LiveSource(server.url, open_timeout_s=10, read_timeout_s=5,
                     buffer=FrameBuffer(max_seconds=60, max_frames=3000)).start()
    src.server = server
    try:
        assert src.wait_for_state({"live", "failed"}, BOUND_S).state == "live"
        yield src
    finally:
        src.stop()
        server.stop()


def wait_until(condition, timeout: float = BOUND_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def still_delivering(good):
    """Asserts that ``good`` delivered frames all through the block, never pausing ``MAX_GAP_S``."""
    started, first = time.time(), good.stats().frames_read
    yield
    assert wait_until(lambda: good.stats().frames_read >= first + 3), "the good stream stopped"
    times = [started] + [f.t for f in good.buffer.snapshot() if f.index >= first]
    assert np.diff(times).max() < MAX_GAP_S, f"the good stream stalled for {np.diff(times).max():.2f} s"


def outcome(url: str, config: PipelineConfig = BAD):
    """The state a source on ``url`` reaches (failed, live or ended), its status, and the source (stopped)."""
    src = open_source(url, config=config).start()
    try:
        status = src.wait_for_state({"failed", "live", "ended"}, config.open_timeout_s + BOUND_S)
    finally:
        src.stop()
    return status


@pytest.mark.parametrize("behaviour, scheme, reason", [
    ("silent", "rtsp", "last attempt: timed out: no valid answer within "),
    ("silent", "http", "last attempt: timed out: no valid answer within "),
    ("garbage", "rtsp", "last attempt: timed out: no valid answer within "),
    ("garbage", "http", "last attempt: timed out: no valid answer within "),
    ("close", "rtsp", "not a video"),
    ("close", "http", "the server closed the connection without sending video"),
    ("html", "http", "not a video: the server answers with text/html"),
    ("html", "rtsp", "not a video"),
    ("empty", "http", "not a video"),
    ("unauthorized", "http", "401 unauthorized"),
])
def test_a_hostile_server_fails_with_its_reason_while_the_good_stream_flows(good, behaviour, scheme, reason):
    with HostileServer(behaviour) as server, still_delivering(good):
        status = outcome(server.url(scheme))
    assert status.state == "failed", status
    assert status.detail.startswith(f"no frames from {server.url(scheme)} within 2 s; last attempt: ") \
        or status.detail.startswith(f"cannot open {server.url(scheme)}: "), status.detail
    assert reason in status.detail, status.detail


def test_401_is_not_retried():
    with HostileServer("unauthorized") as server:
        status = outcome(server.url("http"), PipelineConfig(open_timeout_s=8.0, reconnect_initial_s=0.25))
        assert status.detail == f"cannot open {server.url('http')}: 401 unauthorized: wrong or missing user " \
                                "name or password"
        # one open (FFmpeg's HTTP client asks twice: plain, then for the challenged scheme), no retries:
        # a wrong password is not tried again and again (cameras lock accounts)
        assert server.connections == 2


def test_rtsp_wrong_password_is_401_and_masked(good):
    server = RtspServer(free_port(), user="viewer", password="right-pw").start()
    try:
        with still_delivering(good):
            status = outcome(server.url_with("viewer", "wrong-pw"))
    finally:
        server.stop()
    assert status.state == "failed"
    assert status.detail == f"cannot open rtsp://***@127.0.0.1:{server.port}/test: 401 unauthorized: wrong or " \
                            "missing user name or password"


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_refused_port_fails_at_once(good, scheme):
    """Nothing listens: retrying cannot help a source that never was live, so it fails at the first
    attempt (it used to sit in ``connecting`` for the whole ``open_timeout_s``). A retry would
    come ``reconnect_initial_s`` (5 s) after the first attempt, so failing sooner means none."""
    url = f"{scheme}://127.0.0.1:{free_port()}/x"
    config = PipelineConfig(open_timeout_s=10.0, reconnect_initial_s=5.0, reconnect_max_s=8.0)
    with still_delivering(good):
        started = time.monotonic()
        status = outcome(url, config)
        took = time.monotonic() - started
    assert status.state == "failed" and status.detail == f"cannot open {url}: connection refused: nothing listens " \
                                                         "on that port", status.detail
    assert took < config.reconnect_initial_s, f"the refusal took {took:.1f} s to report: it was retried"


def test_unresolvable_host(good):
    with still_delivering(good):
        status = outcome("rtsp://admin:pw@camera-7.invalid:554/live")
    assert status.state == "failed", status
    assert "rtsp://***@camera-7.invalid:554/live" in status.detail
    assert "cannot resolve host name 'camera-7.invalid'" in status.detail, status.detail


def test_a_clip_decodes_while_a_stream_open_hangs(good, tmp_path):
    """OpenCV's FFmpeg backend holds one global lock while it opens: a hanging stream open used to
    block every file open (and clip prediction) until the open timed out."""
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(12))
    with HostileServer("silent") as server, still_delivering(good):
        src = open_source(server.url("rtsp"), config=HANGING).start()
        try:
            assert wait_until(lambda: server.connections >= 1)  # the open is under way, and hangs
            frames, count = read_frames(clip, {0, 11})
            state_after_clip = src.status.state
        finally:
            src.stop()
    assert sorted(frames) == [0, 11] and count == 12
    assert state_after_clip == "connecting"  # the clip did not wait for the hanging open to give up


def test_a_good_stream_opens_while_another_open_hangs(good):
    with HostileServer("silent") as server:
        bad = open_source(server.url("http"), config=HANGING).start()
        try:
            assert wait_until(lambda: server.connections >= 1)
            with LiveSource(good.server.url, open_timeout_s=BOUND_S) as second:
                assert second.wait_for_state({"live", "failed"}, BOUND_S).state == "live"
                assert bad.status.state == "connecting"  # live while the other open still hangs
        finally:
            bad.stop()


def test_stop_does_not_wait_for_a_hanging_open():
    with HostileServer("silent") as server:
        src = open_source(server.url("rtsp"), config=HANGING).start()
        assert wait_until(lambda: server.connections >= 1)
        src.stop()
        hung_up_when_stopped = server.hung_up
        assert src.status.state == "ended" and src.status.detail == "stopped"
    assert hung_up_when_stopped == 0  # stop() returned while the open still held its connection


def test_a_server_that_dies_mid_stream_is_reconnected(good):
    server = RtspServer(free_port()).start()
    src = open_source(server.url, config=BAD).start()
    try:
        assert src.wait_for_state({"live", "failed"}, BOUND_S).state == "live"
        with still_delivering(good):
            server.proc.kill()  # no goodbye: the connection just drops
            lost = src.wait_for_state({"reconnecting"}, BOUND_S)
            server.proc.wait()
            server.proc = None
            server.start()
            assert src.wait_for_state({"live"}, BOUND_S).state == "live"
        assert wait_until(lambda: src.stats().reconnects == 1)
    finally:
        src.stop()
        server.stop()
    assert lost.state == "reconnecting", lost
    assert lost.detail.startswith(f"lost {server.url} (the server closed the connection); retrying"), lost.detail


@pytest.mark.parametrize("spec, message", [
    (-1, "camera index -1 is out of range: camera index must be 0..63"),
    ("-1", "camera index -1 is out of range: camera index must be 0..63"),
    ("64", "camera index 64 is out of range: camera index must be 0..63"),
    ("99999999999999999999", "camera index 99999999999999999999 is out of range: camera index must be 0..63"),
    (2 ** 40, "camera index 1099511627776 is out of range"),
    ("7" * 5000, "camera index 7777777777777777777777777777777777777777... (5000 characters) is out of range"),
    ("ftp://127.0.0.1/cam", "unsupported source ftp://127.0.0.1/cam"),
    ("rtsp://127.0.0.1/a b", "stream URL 'rtsp://127.0.0.1/a b' contains spaces or control characters"),
    ("rtsp://127.0.0.1/a\r\nInjected: header", "contains spaces or control characters"),
    ("http://u:pw@/x", "stream URL http://***@/x has no host"),
    ("http://[::1/x", "stream URL http://[::1/x is malformed"),
    ("rtsp://127.0.0.1/" + "a" * 5000, "... (5017 characters) is too long: at most 4096 characters"),
])
def test_bad_specs_are_refused_when_the_source_is_made(spec, message):
    with pytest.raises(ValueError) as info:
        open_source(spec)
    assert message in str(info.value)
    assert len(str(info.value)) < 300  # long input is shortened in messages


@pytest.mark.parametrize("spec, name", [("-1", "camera -1"), (-1, "camera -1"), ("²", "²"), ("03", "camera 3")])
def test_describe_source_never_raises(spec, name):
    assert describe_source(spec) == name


@pytest.mark.parametrize("spec", ["cam0", "²", "1.5"])
def test_a_non_numeric_camera_is_a_file_path(spec):
    with pytest.raises(FileNotFoundError, match=f"video file not found: {spec}"):
        open_source(spec)


@pytest.mark.parametrize("text, message", [
    ("-1", "camera index -1 is out of range: camera index must be 0..63"),
    ("99999999999999999999", "camera index 99999999999999999999 is out of range"),
    ("cam0", "not a camera source: 'cam0'"),
    ("²", "not a camera source"),
    ("rtsp://cam/a\nb", "contains spaces or control characters"),
])
def test_the_app_refuses_bad_cameras(text, message):
    with pytest.raises(ValueError, match=message):
        parse_camera_source(text)
