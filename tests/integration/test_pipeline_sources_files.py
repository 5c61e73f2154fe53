"""File, push and camera sources, and open_source(), with real video files made in the test."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from media import moving_square_frames, write_not_a_video, write_video, write_video_ffmpeg, write_y4m
from pipelines.sources import FileSource, LiveSource, PushSource, describe_source, open_source, prepare_image
from pipelines.types import SourceError
from tdn.config import PipelineConfig


def capture_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("capture ")]


def arrivals(src, count: int, timeout: float) -> list[tuple[float, object]]:
    """(wall-clock time seen, frame) for the first ``count`` frames, watched as they arrive."""
    seen, last = [], None
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for frame in src.buffer.wait_for_newer(last, timeout=0.5):
            if (last is None or frame.index > last) and len(seen) < count:
                seen.append((time.time(), frame))
                last = frame.index
    return seen


def test_paced_file_times_follow_the_file_timeline_and_never_run_ahead(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square_frames(12), fps=25)
    src = FileSource(path, realtime=True)
    started = time.time()
    with src:
        seen = arrivals(src, 12, timeout=15)
        ended = src.wait_for_state({"ended"}, timeout=5)
    frames = [f for _, f in seen]
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].t >= started
    # synthetic times: start + presentation time, exactly 1/25 s apart
    np.testing.assert_allclose(np.diff([f.t for f in frames]), 1 / 25, atol=1e-6)
    # paced: no frame is buffered before its time on the timeline has come
    assert all(wall >= f.t for wall, f in seen)
    assert ended.state == "ended" and "12 frames" in ended.detail
    assert src.stats().frames_read == 12


def test_unpaced_file_reads_ahead_of_real_time(tmp_path):
    path = write_video(tmp_path / "long.mp4", moving_square_frames(250, width=32, height=32), fps=25)  # 10 s
    with FileSource(path, realtime=False) as src:
        ended = src.wait_for_state({"ended"}, timeout=30)
        frames = src.buffer.snapshot()
    assert ended.state == "ended" and src.stats().frames_read == 250
    assert ended.since < frames[-1].t  # finished before the 10 s timeline would have played
    np.testing.assert_allclose(np.diff([f.t for f in frames]), 1 / 25, atol=1e-6)


def test_looped_file_continues_its_timeline(tmp_path):
    path = write_video(tmp_path / "loop.mp4", moving_square_frames(6), fps=25)
    with FileSource(path, realtime=False, loop=True) as src:
        seen = arrivals(src, 20, timeout=15)
        assert src.status.state == "live"
    frames = [f for _, f in seen]
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose(np.diff([f.t for f in frames]), 1 / 25, atol=1e-6)  # no jump at the seams
    assert src.status.state == "ended" and src.status.detail == "stopped"
    assert capture_threads() == []


def test_frames_are_rgb_readonly_and_downscaled_at_capture(tmp_path):
    path = write_video(tmp_path / "clip.avi", moving_square_frames(3, width=64, height=48), fps=25, fourcc="MJPG")
    with FileSource(path, realtime=False, max_side=32) as src:
        src.wait_for_state({"ended"}, timeout=10)
        frame = src.buffer.snapshot()[0]
    assert frame.image.shape == (24, 32, 3) and frame.image.dtype == np.uint8
    red_square = frame.image[9:15, 1:5].reshape(-1, 3).mean(0)  # square at x 0..11, y 18..29 in 64x48
    assert red_square[0] > 150 and red_square[2] < 100  # R high, B low: converted from BGR
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1


def test_y4m_file_plays(tmp_path):
    path = write_y4m(tmp_path / "clip.y4m", moving_square_frames(5))
    with FileSource(path, realtime=False) as src:
        assert src.wait_for_state({"ended", "failed"}, timeout=10).state == "ended"
    assert src.stats().frames_read == 5


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        open_source(str(tmp_path / "missing.mp4"))
    bad = FileSource(write_not_a_video(tmp_path / "notes.mp4"))
    with pytest.raises(SourceError, match="notes.mp4.*not a video"):
        bad.start()
    assert bad.status.state == "failed" and "notes.mp4" in bad.status.detail
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty.mp4"):
        FileSource(empty).start()
    # a truncated H.264 file: the container opens, no frame decodes
    whole = write_video_ffmpeg(tmp_path / "whole.mp4", moving_square_frames(50), extra_args=["-movflags", "+faststart"])
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[:1200])
    broken = FileSource(truncated)
    with pytest.raises(SourceError, match="truncated.mp4: no decodable frames"):
        broken.start()
    assert broken.status.state == "failed"
    assert capture_threads() == []


def test_stop_joins_the_capture_thread(tmp_path):
    path = write_video(tmp_path / "loop.mp4", moving_square_frames(4), fps=25)
    src = FileSource(path, realtime=True, loop=True, stream_id="looping").start()
    assert src.wait_for_state({"live"}, timeout=10).state == "live"
    assert "capture looping" in capture_threads()
    src.stop()
    assert "capture looping" not in capture_threads()
    assert src.status.state == "ended"


def test_push_source_lifecycle():
    states = []
    src = PushSource("webcam-1", max_side=32, on_status=lambda sid, st: states.append((sid, st.state)))
    assert src.start().status.state == "connecting"
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 255
    first = src.push(rgb, t=100.0)
    assert first.index == 0 and first.image.shape == (24, 32, 3) and first.image[0, 0].tolist() == [255, 0, 0]
    assert src.status.state == "live"
    assert src.push(rgb, t=99.0) is None  # older than the newest: dropped and counted
    rgba = np.zeros((48, 64, 4), np.uint8)
    assert src.push(rgba, t=101.0).image.shape == (24, 32, 3)
    assert src.push(rgb[..., ::-1].copy(), t=102.0, bgr=True).image[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        src.push(np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        src.push(np.zeros((48, 64, 3), np.float32))
    stats = src.stats()
    assert (stats.frames_read, stats.dropped) == (3, 1)
    assert [f.t for f in src.buffer.snapshot()] == [100.0, 101.0, 102.0]
    src.end("browser closed")
    with pytest.raises(SourceError, match="webcam-1"):
        src.push(rgb)
    assert states == [("webcam-1", "live"), ("webcam-1", "ended")]


def test_missing_camera_fails_naming_it():
    src = LiveSource(63, open_timeout_s=1.0, reconnect_initial_s=0.25, reconnect_max_s=0.5).start()  # no such device
    try:
        status = src.wait_for_state({"failed", "live"}, timeout=10)
    finally:
        src.stop()
    assert status.state == "failed" and "camera 63" in status.detail
    assert status.detail.endswith("last attempt: cannot open camera 63: no such device, busy, or no permission")


def test_open_source_dispatch_and_masking(tmp_path):
    cfg = PipelineConfig(buffer_seconds=3.0, buffer_max_frames=50, capture_max_side=None)
    cam = open_source("0", config=cfg)
    assert isinstance(cam, LiveSource) and cam.name == "camera 0"
    stream = open_source("rtsp://u:pw@cam.local/live", config=cfg, stream_id="door")
    assert stream.name == "rtsp://***@cam.local/live" and stream.stream_id == "door"
    assert (stream.buffer.max_seconds, stream.buffer.max_frames, stream.max_side) == (3.0, 50, None)
    clip = open_source(str(write_video(tmp_path / "a.mp4", moving_square_frames(2))), config=cfg, loop=True)
    assert isinstance(clip, FileSource) and clip.loop and clip.realtime
    with pytest.raises(ValueError, match=r"ftp://\*\*\*@host.*rtsp://") as err:
        open_source("ftp://user:hunter2@host/file.mp4")
    assert "hunter2" not in str(err.value)
    assert describe_source(3) == "camera 3"
    assert describe_source("http://a:b@h/x.mjpg") == "http://***@h/x.mjpg"


def test_prepare_image_never_upscales_and_copies():
    image = np.zeros((20, 30, 3), np.uint8)
    out = prepare_image(image, bgr=False, max_side=640)
    assert out.shape == (20, 30, 3) and out is not image and not np.shares_memory(out, image)


def test_crash_in_the_capture_thread_fails_the_source_with_a_masked_reason(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded near rtsp://eve:letmein@10.0.0.9/x")

    monkeypatch.setattr("pipelines.sources.prepare_image", broken)
    with FileSource(write_video(tmp_path / "clip.mp4", moving_square_frames(3)), realtime=False) as src:
        status = src.wait_for_state({"failed", "ended"}, timeout=10)
    assert status.state == "failed" and "clip.mp4" in status.detail and "decoder exploded" in status.detail
    assert "rtsp://***@10.0.0.9" in status.detail and "letmein" not in status.detail
    assert "RuntimeError" in caplog.text and "letmein" not in caplog.text
