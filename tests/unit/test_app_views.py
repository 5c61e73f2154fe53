"""The app's pure view functions: un-mirroring, annotated frames (top-k panel, RGB-difference and
S-TDM heat maps), status lines."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app import views
from pipelines.overlay import annotate, crop_box, heatmap_colours
from pipelines.postprocess import Prediction
from pipelines.events import PredictionEvent, StatsEvent
from pipelines.types import Frame, Window
from tdn.transforms import PreprocessSpec

SPEC = PreprocessSpec(resize_short=72, input_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
LABELS = ["moving left", "moving right", "still"]


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
    out = views.annotate_latest(frame, None, SPEC, heatmap="none", waiting="collecting frames")
    assert out.shape == (360, 480, 3)
    assert not np.array_equal(out, views.for_display(frame))  # the text panel is there


def test_rgb_heatmap_follows_motion_in_the_segment_the_model_saw():
    frames = moving_square_segment()
    latest = stream_prediction(frames)
    plain = views.annotate_latest(frames[-1], latest, SPEC, heatmap="none", waiting="")
    rgb = views.annotate_latest(frames[-1], latest, SPEC, heatmap="rgb", waiting="")
    changed = (plain != rgb).any(axis=-1)  # (360, 480) at the display scale 3.75
    assert changed[60 * 15 // 4: 76 * 15 // 4, 90 * 15 // 4: 122 * 15 // 4].mean() > 0.5  # where the square moved
    assert not changed[300:, :200].any()  # still background, away from the panel


def test_stdm_heatmap_lies_inside_the_models_crop():
    frames = moving_square_segment()
    response = torch.zeros(16, 16)
    response[4:12, 4:12] = 1.0  # the centre of the crop responds
    latest = stream_prediction(frames, response=response)
    plain = views.annotate_latest(frames[-1], latest, SPEC, heatmap="none", waiting="")
    stdm = views.annotate_latest(frames[-1], latest, SPEC, heatmap="stdm", waiting="")
    changed = (plain != stdm).any(axis=-1)
    x0, y0, x1, y1 = crop_box(360, 480, SPEC)
    assert changed[y0:y1, x0:x1].any()
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()
    # a model without S-TDM (response None) draws no map rather than failing
    no_response = views.annotate_latest(frames[-1], stream_prediction(frames), SPEC, heatmap="stdm",
                                        waiting="")
    assert np.array_equal(no_response, plain)


def test_live_views_draw_no_label_box_and_the_side_panel_gets_full_names_and_says_uncertain():
    frames = moving_square_segment()
    latest = stream_prediction(frames, topk=(("rotating counterclockwise", 0.7), ("still", 0.2)))
    plain = views.annotate_latest(frames[-1], latest, SPEC, heatmap="none", waiting="")
    assert np.array_equal(plain, views.for_display(frames[-1]))  # nothing drawn over the frame
    assert views.label_scores(latest) == {"rotating counterclockwise": 0.7, "still": 0.2}
    assert views.label_scores(None) is None
    assert views.label_title(latest, 0.5) == "rotating counterclockwise"
    assert views.label_title(latest, 0.9) == "uncertain: no class reaches 0.90"
    assert views.label_title(None, 0.0) == "waiting for the first prediction"
    assert views.label_title(None, 0.5, "reconnecting: no frames for 4 s") == "no prediction: reconnecting: no frames for 4 s"
    assert views.claimed_label(latest.prediction.topk, 0.5) == "rotating counterclockwise"
    assert views.claimed_label(latest.prediction.topk, 0.9) is None


def test_heatmap_opacity_scales_the_blend_and_the_legend_uses_the_maps_colours():
    frames = moving_square_segment()
    latest = stream_prediction(frames)
    plain = views.annotate_latest(frames[-1], latest, SPEC, heatmap="none", waiting="")
    off = views.annotate_latest(frames[-1], latest, SPEC, heatmap="rgb", waiting="", opacity=0.0)
    faint = views.annotate_latest(frames[-1], latest, SPEC, heatmap="rgb", waiting="", opacity=0.2)
    strong = views.annotate_latest(frames[-1], latest, SPEC, heatmap="rgb", waiting="", opacity=0.9)
    assert np.array_equal(off, plain)
    change = lambda im: np.abs(im.astype(int) - plain.astype(int)).sum()  # noqa: E731
    assert 0 < change(faint) < change(strong)
    legend = views.heatmap_legend_html()
    cold, hot = heatmap_colours()[0], heatmap_colours()[-1]
    assert f"rgb{cold}" in legend and f"rgb{hot}" in legend and cold[2] > cold[0] and hot[0] > hot[2]  # blue .. red


LIVE_STATS = StatsEvent(stream="cam", time=0.0, state="live", detail="reading rtsp://***@cam/x", fps=24.96,
                        prediction_rate=4.0, latency_ms_p50=40.2, latency_ms_p95=90.0, predictions=10,
                        dropped_windows=3, frames_read=250, frames_evicted=0, reconnects=0)


def test_stream_summary_shows_label_state_and_figures():
    text = views.stream_summary(LIVE_STATS, stream_prediction(moving_square_segment()), threshold=0.5)
    assert "**moving right**" in text and views.status_chip("live") in text and "25.0 fps" in text
    assert "p50 40 ms" in text and "p95 90 ms" in text and "dropped windows 3" in text and "outage" not in text
    assert "nothing above threshold" in views.stream_summary(LIVE_STATS, stream_prediction(moving_square_segment()),
                                                             0.9)
    assert "waiting for the first window" in views.stream_summary(LIVE_STATS, None, 0.0)


def test_a_stream_that_is_down_shows_no_label_and_no_rates_but_its_outage():
    down = dataclasses.replace(LIVE_STATS, state="reconnecting", detail="lost rtsp://***@cam/x; retrying",
                               fps=0.0, prediction_rate=0.0, outages=2, outage_s=9.46, current_outage_s=3.04)
    text = views.stream_summary(down, stream_prediction(moving_square_segment()), threshold=0.5)
    assert views.status_chip("reconnecting") in text and "lost rtsp://***@cam/x" in text
    assert "moving right" not in text and "fps" not in text and "predictions/s" not in text
    assert "no label while the stream is down" in text
    assert "2 outages, 9.5 s without frames · down for 3.0 s now" in text
    assert views.stream_summary(None, None, 0.0).startswith(views.status_chip("stopped"))
    recovered = dataclasses.replace(LIVE_STATS, outages=1, outage_s=5.0)
    assert views.outage_line(recovered) == "1 outage, 5.0 s without frames"
    assert "1 outage, 5.0 s without frames" in views.stream_summary(recovered, None, 0.0)


@pytest.mark.parametrize("state, shown", [("connecting", "connecting"), ("live", "live"),
                                          ("reconnecting", "reconnecting"), ("failed", "failed"),
                                          ("ended", "stopped"), ("stopped", "stopped")])
def test_status_chips_name_the_state_in_its_own_colour(state, shown):
    chip = views.status_chip(state)
    assert f"● {shown}</span>" in chip and views.CHIP_COLOURS[shown] in chip
    assert len(set(views.CHIP_COLOURS.values())) == len(views.CHIP_COLOURS)
    with pytest.raises(ValueError, match="no chip for state 'paused'"):
        views.status_chip("paused")


def test_a_stale_frame_is_greyed_and_darker_than_the_live_one():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (220, 30, 30)
    frame[:, 32:] = (30, 200, 60)
    stale = views.stale_view(frame, "stopped")
    live = views.for_display(frame)
    assert stale.shape == live.shape
    body = stale[stale.shape[0] // 2:]  # below the title panel
    assert np.abs(body[..., 0].astype(int) - body[..., 1]).max() <= 1  # grey: channels equal
    assert body.mean() < 0.6 * live[live.shape[0] // 2:].mean()


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
