"""Overlay frame functions: top-k panel with bars and threshold, difference heat maps, blending."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.overlay import (MIN_SCALE, _fit_text, annotate, blend_heatmap, crop_box, draw_topk, response_map,
                               rgb_difference_map, topk_layout)
from tdn.transforms import PreprocessSpec

SPEC = PreprocessSpec(resize_short=256, input_size=224, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def green_pixels(image: np.ndarray) -> np.ndarray:
    """Mask of the bar colour of claimed entries."""
    return (image[..., 1] > 180) & (image[..., 0] < 100) & (image[..., 2] < 130)


def test_topk_panel_draws_bars_proportional_to_scores_without_touching_the_input():
    frame = np.full((240, 320, 3), 30, np.uint8)
    before = frame.copy()
    out = draw_topk(frame, [("waving", 0.9), ("clapping", 0.3)], threshold=0.0)
    assert np.array_equal(frame, before) and out.shape == frame.shape
    green = green_pixels(out)
    rows = np.nonzero(green.any(axis=1))[0]
    split = rows[np.argmax(np.diff(rows))] + 1  # the gap between the two bars
    first, second = green[: split].sum(axis=0), green[split:].sum(axis=0)
    width_first, width_second = np.count_nonzero(first), np.count_nonzero(second)
    assert width_first / width_second == pytest.approx(3.0, rel=0.15)


def test_below_threshold_nothing_is_claimed():
    frame = np.full((240, 320, 3), 30, np.uint8)
    claimed = draw_topk(frame, [("waving", 0.6), ("clapping", 0.4)], threshold=0.5)
    unclaimed = draw_topk(frame, [("waving", 0.45), ("clapping", 0.4)], threshold=0.5)
    assert green_pixels(claimed).any()
    assert not green_pixels(unclaimed).any()  # grey bars only, and a "no action" line
    assert not np.array_equal(claimed, unclaimed)


def moving_square(n=5, size=(96, 128), x0=70):
    frames = []
    for i in range(n):
        f = np.full((*size, 3), 90, np.uint8)
        f[40:56, x0 + 4 * i: x0 + 4 * i + 16] = 255
        frames.append(f)
    return frames


def test_rgb_difference_map_is_hot_where_things_move_and_zero_when_still():
    heat = rgb_difference_map(moving_square())
    assert heat.shape == (96, 128) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    assert heat[40:56, 70:102].mean() > 0.3 and heat[:, :60].max() == 0.0
    still = [np.full((96, 128, 3), 90, np.uint8)] * 5
    assert not rgb_difference_map(still).any()
    with pytest.raises(ValueError, match="at least 2"):
        rgb_difference_map(still[:1])


def test_crop_box_and_response_map_sit_where_the_model_looked():
    # 640x480 -> 341x256, centre crop 224 at (59, 16) -> back in the frame's pixels
    assert crop_box(480, 640, SPEC) == (111, 30, 531, 450)
    response = np.zeros((56, 56), np.float32)
    response[:, 28:] = 1.0  # the right half of the crop responds
    heat = response_map(response, (480, 640, 3), SPEC)
    assert heat.shape == (480, 640)
    assert heat[:, :111].max() == 0 and heat[:, 531:].max() == 0  # outside the crop
    assert heat[100:400, 340:520].min() == pytest.approx(1.0) and heat[100:400, 120:300].max() == 0.0


def test_blend_heatmap_changes_only_hot_pixels():
    frame = np.full((60, 80, 3), 100, np.uint8)
    heat = np.zeros((30, 40), np.float32)
    heat[:, 20:] = 1.0
    out = blend_heatmap(frame, heat)
    assert out.shape == frame.shape
    assert np.array_equal(out[:, :30], frame[:, :30])
    assert (out[:, 50:] != frame[:, 50:]).any(axis=-1).all()


def test_annotate_combines_heatmap_and_panel():
    frames = moving_square()
    plain = annotate(frames[-1], [("right", 0.8)], heatmap="none")
    rgb = annotate(frames[-1], [("right", 0.8)], heatmap="rgb", segment=frames)
    assert not np.array_equal(plain, rgb)
    assert np.array_equal(plain[-20:, :40], frames[-1][-20:, :40])  # no panel, no motion there
    with pytest.raises(ValueError, match="heatmap must be one of"):
        annotate(frames[-1], [], heatmap="flow")


def test_class_names_are_drawn_whole_at_the_display_width():
    topk = [("rotating counterclockwise", 0.61), ("rotating clockwise", 0.2), ("approaching", 0.1)]
    layout = topk_layout(480, topk)  # the app's display width (views.DISPLAY_MIN_WIDTH)
    assert layout.texts == ("rotating counterclockwise 0.61", "rotating clockwise 0.20", "approaching 0.10")
    assert layout.width <= 480 and layout.bar_x + layout.bar_w <= 480
    widest = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, layout.scale * 0.8, layout.thickness)[0][0]
                 for t in layout.texts)
    assert widest < layout.bar_x  # the text ends before the bars
    out = draw_topk(np.full((360, 480, 3), 30, np.uint8), topk)
    assert green_pixels(out).any()


def test_names_too_long_for_the_smallest_font_are_cut_and_keep_their_score():
    long_name = "assembling a computer from parts while explaining each step"
    layout = topk_layout(200, [(long_name, 0.9), ("clapping", 0.3)])
    assert layout.scale == MIN_SCALE
    assert layout.texts[0].endswith("... 0.90") and long_name.startswith(layout.texts[0][:-8].rstrip())
    assert layout.texts[1] == "clapping 0.30"
    width = cv2.getTextSize(layout.texts[0], cv2.FONT_HERSHEY_SIMPLEX, layout.scale * 0.8, layout.thickness)[0][0]
    assert width < layout.bar_x
    fitted = _fit_text(long_name, 60, 0.5, 1)
    assert fitted.endswith("...") and cv2.getTextSize(fitted, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] <= 60
    assert _fit_text("wave", 60, 0.5, 1) == "wave"


def test_annotate_without_panel_and_opacity_bounds():
    frames = moving_square()
    assert np.array_equal(annotate(frames[-1], [("right", 0.8)], panel=False), frames[-1])
    assert np.array_equal(annotate(frames[-1], [], heatmap="rgb", segment=frames, opacity=0.0, panel=False),
                          frames[-1])
    with pytest.raises(ValueError, match="opacity"):
        annotate(frames[-1], [], heatmap="rgb", segment=frames, opacity=1.5)
