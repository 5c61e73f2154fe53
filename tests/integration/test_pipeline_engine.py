"""Inference engine: the segment cache equals a full recompute, batching across streams,
latest-wins dropping, bounded cache; post-processing."""
from __future__ import annotations

import importlib.util
import threading
import time

import numpy as np
import pytest
import torch

from pipelines.engine import InferenceEngine, SegmentCache
from pipelines.postprocess import PostProcessor
from pipelines.preprocess import CpuPreprocessor
from pipelines.types import Frame, Window
from random_weights import random_weights, relative_error
from tdn.api import load_model
from tdn.sampling import SEGMENT_LENGTH
from tdn.transforms import PreprocessSpec

T = 4
SIZE = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = load_model(arch="resnet18", num_segments=T, num_classes=5, precision="fp32")
    m.meta.input_size, m.meta.resize_short = SIZE, 72
    return m


@pytest.fixture(scope="module")
def preprocessor(model):
    return CpuPreprocessor(PreprocessSpec.from_meta(model.meta))


def moving_frames(n: int, seed: int = 0, fps: float = 25.0) -> list[Frame]:
    """A bright square moving right over noise, ``n`` frames of 48x64 RGB at ``fps``."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, (48, 64, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        image = background.copy()
        x = (2 * i) % 48
        image[16:32, x:x + 16] = (250, 200, 40)
        frames.append(Frame(image=image, t=1000.0 + i / fps, index=i))
    return frames


def window_at(frames: list[Frame], stream: str, first_centre: int, step: int) -> Window:
    """The window whose T centres are frames ``first_centre + k * step`` (k < T)."""
    centres = [first_centre + k * step for k in range(T)]
    segs = tuple(tuple(frames[c - SEGMENT_LENGTH // 2: c + SEGMENT_LENGTH // 2 + 1]) for c in centres)
    return Window(stream=stream, centres=tuple(frames[c].t for c in centres), frames=segs,
                  newest_t=segs[-1][-1].t)


def test_cached_windows_equal_full_recompute(model, preprocessor):
    frames = moving_frames(60)
    windows = [window_at(frames, "cam", 2 + k * 3, 3) for k in range(6)]  # each shares T-1 centres with the last
    cached = InferenceEngine(model, preprocessor, cache_segments=True)
    fresh = InferenceEngine(model, preprocessor, cache_segments=False)
    for w in windows:
        (a,) = cached.run_windows([w])
        with torch.inference_mode():
            direct = model(preprocessor.segments([[f.image for f in seg] for seg in w.frames]).unsqueeze(0))[0]
        (b,) = fresh.run_windows([w])
        assert (a.logits - direct).abs().max().item() <= 1e-4
        assert (b.logits - direct).abs().max().item() <= 1e-4
    stats = cached.stats()
    # first window: T segments; each later window: one new segment
    assert stats.segments_computed == T + len(windows) - 1
    assert stats.cache_hits == (T - 1) * (len(windows) - 1)
    assert fresh.stats().segments_computed == T * len(windows)
    assert len(cached.cache) == T  # segments before the newest window's first centre are gone
    assert len(fresh.cache) == 0


def test_batch_across_streams_equals_single_windows(model, preprocessor):
    a_frames, b_frames = moving_frames(30, seed=1), moving_frames(30, seed=2)
    wa, wb = window_at(a_frames, "a", 2, 5), window_at(b_frames, "b", 3, 6)
    engine = InferenceEngine(model, preprocessor, cache_segments=False)
    batched = engine.run_windows([wa, wb])
    assert [r.batch_size for r in batched] == [2, 2]
    for r, w in zip(batched, [wa, wb]):
        (single,) = engine.run_windows([w])
        assert r.window is w
        assert (r.logits - single.logits).abs().max().item() <= 1e-4
    # the S-TDM response of the newest segment comes with each result, over the crop at 1/4 scale
    assert batched[0].response.shape == (SIZE // 4, SIZE // 4)
    assert not torch.equal(batched[0].response, batched[1].response)


def test_same_centre_in_two_streams_is_not_shared(model, preprocessor):
    frames_a, frames_b = moving_frames(20, seed=3), moving_frames(20, seed=4)
    engine = InferenceEngine(model, preprocessor)
    (ra,) = engine.run_windows([window_at(frames_a, "a", 2, 4)])
    (rb,) = engine.run_windows([window_at(frames_b, "b", 2, 4)])  # same centre times, other stream
    assert engine.stats().cache_hits == 0
    assert not torch.allclose(ra.logits, rb.logits)


def test_segment_cache_is_bounded_lru():
    cache = SegmentCache(3)
    for k in range(5):
        cache.put(("s", float(k), (k,)), (torch.zeros(1), None))
    assert len(cache) == 3
    assert cache.get(("s", 0.0, (0,))) is None and cache.get(("s", 4.0, (4,))) is not None
    cache.drop_stream("s")
    assert len(cache) == 0


def test_latest_window_wins_and_drops_are_counted(model, preprocessor):
    """Windows submitted while the engine is busy replace the stream's pending one."""
    frames = moving_frames(80)
    results, done = [], threading.Event()

    def on_result(result):
        results.append(result)
        done.set()

    engine = InferenceEngine(model, preprocessor, max_batch=4, max_wait_ms=0, on_result=on_result)
    windows = [window_at(frames, "cam", 2 + k, 2) for k in range(10)]
    with engine.model_lock:  # hold the model: the engine thread cannot run while we submit
        engine.start()
        for w in windows:
            engine.submit(w)
    assert done.wait(60)
    assert engine.wait_idle(60)  # the newest window, pending while the first ran, has run too
    engine.stop()
    counters = engine.stats().streams["cam"]
    assert counters.submitted == 10
    assert counters.dropped + counters.predicted == 10
    assert counters.dropped >= 8  # at most the first (taken before we held the lock) and the last ran
    assert results[-1].window is windows[-1]  # the newest window is never the one dropped


def test_submit_rejects_wrong_segment_count(model, preprocessor):
    frames = moving_frames(20)
    w = window_at(frames, "cam", 2, 3)
    short = Window(w.stream, w.centres[:2], w.frames[:2], w.newest_t)
    with pytest.raises(ValueError, match="segments"):
        InferenceEngine(model, preprocessor).submit(short)


def test_postprocessor_smooths_thresholds_and_reports_label_changes():
    labels = ["left", "right", "still"]
    post = PostProcessor(labels, smoothing=2, threshold=0.6, topk=2)
    logit = lambda i: torch.tensor([5.0 if j == i else 0.0 for j in range(3)])  # noqa: E731
    first = post.update(logit(0))
    assert first.label == "left" and first.changed and first.topk[0][0] == "left"
    assert len(first.topk) == 2 and first.topk[0][1] > first.topk[1][1]
    mixed = post.update(logit(1))  # average of "left" and "right": neither above 0.6
    assert mixed.label is None and mixed.changed
    assert mixed.scores.sum() == pytest.approx(1.0, abs=1e-5)
    settled = post.update(logit(1))  # the window of 2 now holds only "right"
    assert settled.label == "right" and settled.changed
    assert not post.update(logit(1)).changed


def test_removing_a_stream_while_a_batch_fills_is_harmless(model, preprocessor, caplog):
    frames = moving_frames(30)
    results, done = [], threading.Event()
    engine = InferenceEngine(model, preprocessor, max_batch=4, max_wait_ms=300,
                             on_result=lambda r: (results.append(r), done.set()))
    engine.start()
    try:
        engine.submit(window_at(frames, "gone", 2, 3))  # the engine now waits up to 0.3 s for more streams
        engine.forget_stream("gone")
        time.sleep(0.6)  # the wait ends with nothing pending
        engine.submit(window_at(frames, "kept", 3, 3))
        assert done.wait(60)
    finally:
        engine.stop()
    assert [r.window.stream for r in results] == ["kept"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_an_overloaded_engine_serves_streams_in_turn(model, preprocessor):
    """More streams than the model can serve: each round every stream submits a window (always in
    the same order) and one batch of 4 of the 6 is taken. Round-robin serves each stream in 2 of
    3 rounds; serving by arrival would favour the streams that always submit first."""
    frames = moving_frames(40)
    engine = InferenceEngine(model, preprocessor, max_batch=4, max_wait_ms=0)  # not started: batches taken by hand
    streams = [f"cam{i}" for i in range(6)]
    served = {s: 0 for s in streams}
    for k in range(6):
        for s in streams:
            engine.submit(window_at(frames, s, 2 + k, 2))
        for window in engine._take_batch():
            served[window.stream] += 1
    assert served == {s: 4 for s in streams}
    counters = engine.stats().streams
    assert all(counters[s].submitted == 6 for s in streams)
    assert sum(counters[s].dropped for s in streams) == 36 - 24 - 2  # submitted - taken - the two still pending


@pytest.mark.parametrize("engine", [e for e in ("onnxruntime", "openvino") if importlib.util.find_spec(e)])
def test_engines_serve_the_same_windows_as_torch(engine, tmp_path):
    """Both halves through an ONNX engine (per-segment features, cached, and the temporal part) give the
    logits and S-TDM responses of the torch model (fp32, 1e-4 of the range)."""
    weights = random_weights(tmp_path / "w.pt", num_segments=T, size=SIZE)
    reference = load_model(weights, precision="fp32")
    model = load_model(weights, precision="fp32", engine=engine)
    frames = moving_frames(60)
    windows = [window_at(frames, "cam", 2 + k * 3, 3) for k in range(5)]  # each shares T-1 centres with the last
    results = {}
    for name, m in (("torch", reference), (engine, model)):
        runner = InferenceEngine(m, CpuPreprocessor(PreprocessSpec.from_meta(m.meta)), cache_segments=True)
        results[name] = [r for w in windows for r in runner.run_windows([w])]
        assert runner.stats().cache_hits == (T - 1) * (len(windows) - 1)
    for expected, got in zip(results["torch"], results[engine]):
        assert relative_error(got.logits, expected.logits) <= 1e-4
        assert relative_error(got.response, expected.response) <= 1e-4
