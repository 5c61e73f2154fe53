"""The service publishes its events for real: kind filters, the bounded frame subscription, smoothing
that resets after a gap (a pause, a reconnect), and every event kind from a paced file source,
each valid against its schema."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
import torch

from media import moving_square_frames, write_video
from pipelines.events import EVENT_KINDS, PredictionEvent, StatusEvent
from pipelines.postprocess import probabilities
from pipelines.service import RecognitionService
from schema_check import assert_valid, strict_json
from tdn.config import Config

TIMEOUT_S = 120  # generous: the machine may be loaded; nothing waits this long when things work


@pytest.fixture(scope="module")
def model(tiny_model):
    with torch.no_grad():
        tiny_model.fc.weight.normal_(0, 0.02)  # logits of a few units: windows score differently, not saturated
    return tiny_model


def make_service(model, **pipeline) -> RecognitionService:
    config = Config()
    config.pipeline.window_seconds = 1.0
    config.pipeline.max_wait_ms = 0.0
    config.pipeline.backend = "cpu"
    for key, value in pipeline.items():
        setattr(config.pipeline, key, value)
    return RecognitionService(config, model=model)


def test_the_stats_thread_hands_freed_memory_back_periodically(model, monkeypatch):
    """RSS gained under overload stays with glibc until a trim (measured: +58 MB after 3 min, all
    returned by one ``malloc_trim``); the service trims from its stats thread every TRIM_EVERY_S."""
    import pipelines.service as service_module

    trims = threading.Semaphore(0)
    monkeypatch.setattr(service_module, "TRIM_EVERY_S", 0.0)
    monkeypatch.setattr(service_module, "release_freed_memory", trims.release)
    with make_service(model, stats_interval_s=0.05):
        assert all(trims.acquire(timeout=TIMEOUT_S) for _ in range(3))  # keeps trimming, not once


def test_subscribe_filters_by_kind_and_names_unknown_kinds(model):
    with make_service(model) as service:
        with pytest.raises(ValueError, match="unknown event kinds \\['predictions'\\]"):
            service.subscribe(print, kinds={"predictions"})
        statuses = queue.Queue()
        service.subscribe(statuses.put, kinds={"status"})
        sid = service.add_push_source("cam")
        service.remove_source(sid)
        event = statuses.get(timeout=TIMEOUT_S)
        assert isinstance(event, StatusEvent) and event.status.state == "ended"


def test_frames_subscription_is_bounded_and_the_newest_frame_is_a_query(model):
    with make_service(model, buffer_max_frames=8) as service:
        sid = service.add_push_source("cam")
        assert service.latest_frame(sid) is None
        for i, image in enumerate(moving_square_frames(30, width=32, height=24)):
            service.push_frame(sid, image, 1000.0 + i / 25)
        assert service.latest_frame(sid).index == 29
        stop, seen = threading.Event(), []
        for frame in service.frames(sid, stop=stop):  # a late subscriber: only what the stream still holds
            seen.append(frame.index)
            if frame.index == 29:
                stop.set()
        assert seen == list(range(22, 30))


@pytest.mark.parametrize("gap", ["pause", "reconnect"])
def test_smoothing_restarts_after_a_gap_in_the_stream(model, gap):
    """Smoothing over 3 windows. After a 3 s pause (> max_frame_gap_s: the grid restarts), or when
    the source reports ``reconnecting`` between two frames 40 ms apart (the grid goes on), the
    first prediction is the softmax of its own window alone; the one before was an average."""
    predictions: queue.Queue[PredictionEvent] = queue.Queue()
    with make_service(model, smoothing=3, max_frame_gap_s=1.0) as service:
        service.subscribe(predictions.put, kinds={"prediction"})
        sid = service.add_push_source("cam")
        frames = moving_square_frames(100, width=96, height=72, square=16)
        # live sources stamp frames (and status changes) with the wall clock: the frames before the gap end now
        t0 = time.time() - 2.0 if gap == "reconnect" else 1000.0

        def push(first: int, last: int, start: float) -> None:
            for i in range(first, last):
                service.push_frame(sid, frames[i], start + i / 25)

        push(0, 30, t0)  # grid t0 + 0.08 + k * 0.25: windows end at about t0 + 0.92 and t0 + 1.16
        before = [predictions.get(timeout=TIMEOUT_S)]
        push(30, 50, t0)  # up to t0 + 1.96: the last window before the gap ends at t0 + 1.92
        while before[-1].time < t0 + 1.8:
            before.append(predictions.get(timeout=TIMEOUT_S))
        if gap == "pause":
            resume = t0 + 3.0  # frames from t0 + 5.0 on, 3 s after the last one
        else:
            resume = t0
            source = service.source(sid)
            source._set_status("reconnecting", "lost (test)")  # as a LiveSource does when its stream drops
            source._set_status("live", "reading (test)")
        push(50, 100, resume)
        first_after = predictions.get(timeout=TIMEOUT_S)
        assert first_after.time >= resume + 50 / 25

        def own(event: PredictionEvent) -> np.ndarray:
            return probabilities(service.engine.run_windows([event.window])[0].logits)

        before_probs = [own(e) for e in before[-3:]]
        after_probs = own(first_after)
    np.testing.assert_allclose(before[-1].prediction.scores, np.mean(before_probs, axis=0), atol=1e-4)  # averaged
    np.testing.assert_allclose(first_after.prediction.scores, after_probs, atol=1e-4)  # alone
    mixed = np.mean(before_probs[-2:] + [after_probs], axis=0)  # what it would be without the reset
    assert np.abs(mixed - after_probs).max() > 1e-3, "the windows score alike: the test would not see an average"


def test_a_file_stream_publishes_every_event_kind_and_each_validates(model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(50, width=96, height=72))  # 2 s at 25 fps
    events, lock, done = [], threading.Lock(), threading.Event()

    def listener(event) -> None:
        with lock:
            events.append(event)
            kinds = {e.kind for e in events}
            healthy_kinds = set(EVENT_KINDS) - {"error"}  # errors come only from a broken model
            if kinds == healthy_kinds and any(isinstance(e, StatusEvent) and e.status.state == "ended" for e in events):
                done.set()

    with make_service(model, stats_interval_s=0.2) as service:
        service.subscribe(listener)
        sid = service.add_source(str(clip))  # paced at its frame rate, so it lives long enough for stats
        assert done.wait(TIMEOUT_S), f"kinds seen: {sorted({e.kind for e in events})}"
        assert service.wait_until_ended(TIMEOUT_S)
        latest_stats = service.stats()[sid]
    with lock:
        records = [strict_json(e) for e in events]
    for record in records:
        assert_valid(record)
    assert {r["stream"] for r in records} == {sid}
    first_change = next(r for r in records if r["event"] == "label_change")
    assert first_change["from"] is None and first_change["to"] in {"a", "b", "c"}  # threshold 0: claimed at once
    changes = [r for r in records if r["event"] == "label_change"]
    assert all(earlier["to"] == later["from"] for earlier, later in zip(changes, changes[1:]))  # one chain
    stats = [r for r in records if r["event"] == "stats"]
    assert stats[-1]["frames_read"] <= latest_stats.frames_read == 50
