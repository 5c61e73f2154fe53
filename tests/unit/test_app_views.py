"""The app's pure view functions: un-mirroring, annotated frames (top-k panel, RGB-difference and
S-TDM heat maps), status lines."""
from __future__ import annotations

import numpy as np
import torch

from app import views
from pipelines.overlay import annotate, crop_box
from pipelines.postprocess import Prediction
from pipelines.events import PredictionEvent, StatsEvent
from pipelines.types import Frame, Window
from tdn.transforms import PreprocessSpec

SPEC = PreprocessSpec(resize_short=72, input_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
LABELS = ["moving left", "moving right", "still"]


def test_camera_view_flips_a_mirrored_frame_back_and_leaves_others_alone():
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:, :3] = (255, 0, 0)  # left half red, as the camera captured it
    mirrored = frame[:, ::-1]  # what Gradio's mirrored webcam sends
    restored = views.camera_view(mirrored, mirrored=True)
    assert np.array_equal(restored, frame) and restored.flags.c_contiguous
    assert views.camera_view(frame, mirrored=False) is frame


def test_for_display_enlarges_small_frames_to_an_even_size_only():
    small = np.zeros((48, 64, 3), np.uint8)
    big = views.for_display(small)
    assert big.shape == (360, 480, 3)
    odd = views.for_display(np.zeros((47, 64, 3), np.uint8))
    assert odd.shape[1] == 480 and odd.shape[0] % 2 == 0
    large = np.zeros((480, 640, 3), np.uint8)
    assert views.for_display(large) is large


def moving_square_segment(n=5, size=(96, 128)) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.full((*size, 3), 90, np.uint8)
        f[60:76, 90 + 4 * i: 106 + 4 * i] = 255
        frames.append(f)
    return frames


def stream_prediction(frames, *, topk=(("moving right", 0.7), ("still", 0.2)), response=None) -> PredictionEvent:
    segment = tuple(Frame(image=f, t=0.04 * i, index=i) for i, f in enumerate(frames))
    window = Window(stream="cam", centres=(0.08,), frames=(segment,), newest_t=segment[-1].t)
    prediction = Prediction(scores=np.array([0.1, 0.7, 0.2], np.float32), topk=topk, label=topk[0][0], previous=None,
                            threshold=0.0)
    return PredictionEvent(stream="cam", time=window.newest_t, latency_ms=12.0, prediction=prediction,
                            response=response, window=window)


def test_annotate_latest_draws_waiting_text_before_the_first_prediction():
    frame = np.full((96, 128, 3), 90, np.uint8)
    out = views.annotate_latest(frame, None, SPEC, threshold=0.0, heatmap="none", waiting="collecting frames")
    assert out.shape == (360, 480, 3)
    assert not np.array_equal(out, views.for_display(frame))  # the text panel is there


def test_rgb_heatmap_follows_motion_in_the_segment_the_model_saw():
    frames = moving_square_segment()
    latest = stream_prediction(frames)
    plain = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.0, heatmap="none", waiting="")
    rgb = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.0, heatmap="rgb", waiting="")
    changed = (plain != rgb).any(axis=-1)  # (360, 480) at the display scale 3.75
    assert changed[60 * 15 // 4: 76 * 15 // 4, 90 * 15 // 4: 122 * 15 // 4].mean() > 0.5  # where the square moved
    assert not changed[300:, :200].any()  # still background, away from the panel


def test_stdm_heatmap_lies_inside_the_models_crop():
    frames = moving_square_segment()
    response = torch.zeros(16, 16)
    response[4:12, 4:12] = 1.0  # the centre of the crop responds
    latest = stream_prediction(frames, response=response)
    plain = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.0, heatmap="none", waiting="")
    stdm = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.0, heatmap="stdm", waiting="")
    changed = (plain != stdm).any(axis=-1)
    x0, y0, x1, y1 = crop_box(360, 480, SPEC)
    assert changed[y0:y1, x0:x1].any()
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()
    # a model without S-TDM (response None) draws no map rather than failing
    no_response = views.annotate_latest(frames[-1], stream_prediction(frames), SPEC, threshold=0.0, heatmap="stdm",
                                        waiting="")
    assert np.array_equal(no_response, plain)


def test_threshold_greys_out_what_is_not_claimed():
    frames = moving_square_segment()
    latest = stream_prediction(frames)
    low = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.5, heatmap="none", waiting="")
    high = views.annotate_latest(frames[-1], latest, SPEC, threshold=0.9, heatmap="none", waiting="")
    green = lambda im: ((im[..., 1] > 180) & (im[..., 0] < 100) & (im[..., 2] < 130)).sum()  # noqa: E731
    assert green(low) > 0 and green(high) == 0
    assert views.claimed_label(latest.prediction.topk, 0.5) == "moving right"
    assert views.claimed_label(latest.prediction.topk, 0.9) is None


def test_stream_summary_shows_label_state_and_figures():
    stats = StatsEvent(stream="cam", time=0.0, state="live", detail="reading rtsp://***@cam/x", fps=24.96,
                       prediction_rate=4.0, latency_ms_p50=40.2, latency_ms_p95=90.0, predictions=10, dropped_windows=3,
                       frames_read=250, frames_evicted=0, reconnects=0)
    text = views.stream_summary(stats, stream_prediction(moving_square_segment()), threshold=0.5)
    assert "**moving right**" in text and "`live`" in text and "25.0 fps" in text
    assert "p50 40 ms" in text and "p95 90 ms" in text and "dropped windows 3" in text
    assert "nothing above threshold" in views.stream_summary(stats, stream_prediction(moving_square_segment()), 0.9)
    assert "waiting for the first window" in views.stream_summary(stats, None, 0.0)


def test_overlay_annotate_stdm_needs_response_and_spec():
    frame = np.full((96, 128, 3), 90, np.uint8)
    plain = annotate(frame, [("x", 0.5)])
    assert np.array_equal(annotate(frame, [("x", 0.5)], heatmap="stdm", response=None, spec=SPEC), plain)
    assert np.array_equal(annotate(frame, [("x", 0.5)], heatmap="stdm", response=np.ones((16, 16)), spec=None), plain)


def test_topk_scores_and_window_probabilities():
    from pipelines.clip import ClipPrediction, ClipWindow

    assert views.topk_scores(np.array([0.2, 0.5, 0.3]), LABELS, 2) == {"moving right": 0.5, "still": 0.3}
    windows = [ClipWindow(time=1.0, logits=torch.tensor([3.0, 0.0, 0.0])), ClipWindow(time=1.5, logits=torch.zeros(3))]
    result = ClipPrediction(source="c.mp4", scores=np.ones(3, np.float32) / 3, views="1x1", frames=20, fps=10.0,
                            windows=windows)
    probs = views.window_probabilities(result)
    assert probs.shape == (2, 3) and probs[0, 0] > 0.9 and np.allclose(probs[1], 1 / 3)
