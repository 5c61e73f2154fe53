"""RecognitionService: push streams, per-stream state, stats, removal, clips - with a tiny model."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from media import moving_square_frames, write_video
from pipelines.events import PredictionEvent, StatusEvent
from pipelines.service import RecognitionService
from tdn.config import Config


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture
def service(model):
    config = Config()
    config.pipeline.window_seconds = 1.0
    config.pipeline.max_wait_ms = 0.0
    config.pipeline.backend = "cpu"
    with RecognitionService(config, model=model) as s:
        yield s


def push_clip(service, sid, frames, t0=1000.0, fps=25.0):
    for i, image in enumerate(frames):
        service.push_frame(sid, image, t0 + i / fps)


def test_push_streams_get_their_own_predictions(service):
    events, got = [], threading.Event()

    def listener(event):
        events.append(event)
        streams = {e.stream for e in events if isinstance(e, PredictionEvent)}
        if streams >= {"left", "right"}:
            got.set()

    service.subscribe(listener)
    left, right = service.add_push_source("left"), service.add_push_source("right")
    frames = moving_square_frames(60, width=96, height=72, square=16)
    push_clip(service, left, frames)
    pushing_fps = service.source(left).stats().fps  # read while frames flow: later, the silence counts
    push_clip(service, right, [np.ascontiguousarray(f[:, ::-1]) for f in frames])  # the mirror image
    assert got.wait(60)
    assert service.wait_until_ended(timeout=0.1) is False  # push streams stay open
    assert service.engine.wait_idle(60)
    a, b = service.latest(left), service.latest(right)
    assert a.stream == "left" and b.stream == "right"
    assert a.window.frames[-1][-1].image is not b.window.frames[-1][-1].image  # never a shared buffer
    assert 1000.0 < a.time <= 1000.0 + 59 / 25.0
    assert any(isinstance(e, StatusEvent) and e.status.state == "live" for e in events)
    stats = service.stats()
    assert stats[left].predictions >= 1 and stats[left].frames_read == 60
    assert pushing_fps == pytest.approx(25.0, rel=0.01)
    assert stats[left].latency_ms_p50 is not None


def test_remove_source_forgets_the_stream(service):
    sid = service.add_push_source("cam")
    assert service.add_push_source("cam") == "cam #2"  # ids stay unique
    service.remove_source(sid)
    assert sid not in service.streams() and "cam #2" in service.streams()
    with pytest.raises(ValueError, match="no stream"):
        service.latest(sid)
    with pytest.raises(ValueError, match="no stream"):
        service.remove_source(sid)


def test_push_frame_only_for_push_streams(service, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(40, width=96, height=72))
    sid = service.add_source(str(clip), realtime=False)
    with pytest.raises(ValueError, match="push streams only"):
        service.push_frame(sid, np.zeros((72, 96, 3), np.uint8))
    assert service.wait_until_ended(timeout=60)
    assert service.latest(sid) is not None
    assert service.status()[sid].state == "ended"


def test_predict_clip_through_the_service(service, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(40, width=96, height=72))
    result = service.predict_clip(clip, views="1x1", per_window=True)
    top = service.topk(result.scores, 2)
    assert [e["label"] for e in top] and {e["label"] for e in top} <= {"a", "b", "c"}
    assert top[0]["score"] >= top[1]["score"]
    assert result.windows


def test_clips_scored_together_equal_each_scored_alone(service, tmp_path):
    """``predict_clips`` (the cluster's batched POST /predict) runs several clips' views in one batch:
    the same scores as one at a time, and a bad file gives its error without stopping the others."""
    from pipelines.clip import predict_clips
    from tdn.video import ClipError

    clips = [write_video(tmp_path / f"clip{i}.mp4", moving_square_frames(32 + 8 * i, width=96, height=72))
             for i in range(2)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    results = predict_clips(service.engine, [clips[0], bad, clips[1]])
    assert isinstance(results[1], ClipError) and "bad.mp4" in str(results[1])
    for clip, together in zip(clips, (results[0], results[2])):
        alone = service.predict_clip(clip, views="1x1")
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5)
        assert together.frames == alone.frames and together.source == str(clip)


@pytest.mark.slow
def test_rtsp_predictions_resume_after_the_server_restarts(model):
    """Real loopback RTSP camera -> predictions; server down -> reconnecting; back -> predictions again."""
    from loopback import RtspServer, free_port

    config = Config()
    config.pipeline.window_seconds = 1.0
    config.pipeline.max_wait_ms = 0.0
    config.pipeline.backend = "cpu"
    config.pipeline.read_timeout_s, config.pipeline.open_timeout_s = 2.0, 6.0
    config.pipeline.reconnect_initial_s, config.pipeline.reconnect_max_s = 0.25, 1.0
    server = RtspServer(free_port()).start()
    states, predictions = [], []
    with RecognitionService(config, model=model) as service:
        service.subscribe(lambda e: states.append(e.status.state) if isinstance(e, StatusEvent)
                          else predictions.append(e.time), kinds={"status", "prediction"})
        sid = service.add_source(server.url_with("cam", "hunter2"))
        assert "hunter2" not in sid
        try:
            deadline = time.monotonic() + 20
            while not predictions and time.monotonic() < deadline:
                time.sleep(0.1)
            assert predictions, f"no prediction from the RTSP stream; states {states}"
            server.stop()
            deadline = time.monotonic() + 10
            while "reconnecting" not in states and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "reconnecting" in states
            restarted = time.time()
            server.start()
            deadline = time.monotonic() + 30
            while not any(t > restarted for t in predictions) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert any(t > restarted for t in predictions)  # windows of frames captured after the restart
            assert states[-1] == "live"
            assert service.stats()[sid].state == "live"
        finally:
            server.stop()
