"""The clip job's one decoding pass: the protocol score is the same as from its own pass, and the
annotated video (drawn as the frames come, encoded by ffmpeg as H.264) has every frame with the
overlay of the window that had ended by then."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.clip_video import AnnotatedClipVideo
from media import moving_square_frames, write_video
from pipelines.clip import ClipWindow, predict_clip
from pipelines.engine import InferenceEngine
from pipelines.overlay import crop_box
from pipelines.preprocess import CpuPreprocessor
from tdn.api import load_model
from tdn.transforms import PreprocessSpec
from tdn.video import BrowserVideoWriter

SPEC = PreprocessSpec(resize_short=72, input_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
LABELS = ["moving left", "moving right", "still"]


def decoded(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def window(time: float, cls: int, response=None) -> ClipWindow:
    logits = torch.zeros(3)
    logits[cls] = 3.0
    return ClipWindow(time=time, logits=logits, response=response)


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    model = load_model(arch="resnet18", num_segments=4, num_classes=3, precision="fp32")
    return InferenceEngine(model, CpuPreprocessor(SPEC), max_batch=3)


@pytest.mark.parametrize("views", ["1x1", "10x3"])
def test_one_pass_gives_the_protocol_score_of_its_own_pass(engine, tmp_path, views):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(70, width=96, height=72))
    alone = predict_clip(engine, clip, views=views)
    shared = predict_clip(engine, clip, views=views, per_window=True, window_seconds=1.0)
    assert shared.frames == alone.frames == 70 and shared.windows
    np.testing.assert_allclose(shared.scores, alone.scores, rtol=1e-5, atol=1e-6)


def test_predict_clip_feeds_the_video_every_frame_and_window(engine, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(60, width=96, height=72))
    video = AnnotatedClipVideo(tmp_path / "annotated.mp4", 25.0, LABELS, threshold=0.0, heatmap="rgb", k=2, spec=SPEC)
    result = predict_clip(engine, clip, per_window=True, window_seconds=1.0, sink=video)
    out = video.close()
    assert video.frames_written == result.frames == 60
    frames = decoded(out)
    assert len(frames) == 60 and frames[0].shape == (360, 480, 3)  # enlarged for legible overlays
    with pytest.raises(ValueError, match="per_window"):
        predict_clip(engine, clip, sink=video)


def test_each_frame_shows_the_newest_window_that_had_ended(tmp_path):
    video = AnnotatedClipVideo(tmp_path / "a.mp4", 10.0, LABELS, threshold=0.0, heatmap="none", k=2)
    grey = [np.full((48, 64, 3), 20 + 5 * i, np.uint8) for i in range(30)]
    for i in range(10):
        video.frame(i, grey[i])
    video.windows([], complete_before=0.5)  # frames 0-4 (before 0.5 s) can be drawn: no window yet
    assert video.frames_written == 5
    for i in range(10, 30):
        video.frame(i, grey[i])
    video.windows([window(0.5, 0), window(1.0, 1)], complete_before=float("inf"))
    out = video.close()
    frames = decoded(out)
    assert len(frames) == 30 and frames[0].shape == (360, 480, 3)
    bars = lambda bgr: ((bgr[..., 1] > 150) & (bgr[..., 2] < 120) & (bgr[..., 0] < 140)).sum()  # noqa: E731
    assert bars(frames[2]) == 0 and bars(frames[20]) > 100  # the first window ends at 0.5 s (frame 5)


@pytest.mark.parametrize("opacity", [0.6, 0.0])
def test_stdm_heat_map_of_each_window_lies_over_the_crop_at_the_chosen_opacity(opacity, tmp_path):
    response = np.zeros((16, 16), np.float16)
    response[:, 8:] = 1.0  # the right half of the crop responds
    video = AnnotatedClipVideo(tmp_path / "stdm.mp4", 10.0, LABELS, threshold=0.0, heatmap="stdm", k=2, spec=SPEC,
                               opacity=opacity)
    for i in range(30):
        video.frame(i, np.full((48, 64, 3), 90, np.uint8))
    video.windows([window(0.5, 0, response)], complete_before=float("inf"))
    frames = decoded(video.close())
    colour = lambda bgr: np.abs(bgr.astype(int) - bgr.mean(axis=2, keepdims=True)).sum(axis=2) > 60  # noqa: E731
    x0, y0, x1, y1 = crop_box(360, 480, SPEC)  # the displayed frame is 480x360
    mid = (x0 + x1) // 2
    rows = slice(y1 - 60, y1 - 10)  # below the top-k panel
    before, after = colour(frames[2]), colour(frames[20])
    assert not before[rows].any()
    if opacity == 0.0:  # the page's slider at 0: no map at all
        assert not after[rows].any()
    else:
        assert after[rows, mid + 10:x1 - 10].mean() > 0.9 and not after[rows, x0 + 10:mid - 10].any()


def test_a_failed_job_leaves_no_file_and_an_empty_one_says_so(tmp_path):
    video = AnnotatedClipVideo(tmp_path / "gone.mp4", 10.0, LABELS, threshold=0.0, heatmap="none", k=2)
    video.frame(0, np.zeros((48, 64, 3), np.uint8))
    video.windows([], complete_before=1.0)
    video.discard()
    assert not (tmp_path / "gone.mp4").exists()
    with pytest.raises(ValueError, match="no frames"):
        AnnotatedClipVideo(tmp_path / "none.mp4", 10.0, LABELS, threshold=0.0, heatmap="none", k=2).close()


def test_an_encoder_that_fails_is_reported_by_write_and_release_without_blocking(tmp_path):
    """ffmpeg exits (here: its output folder is gone) while frames are queued for it: the writer says why
    instead of waiting on a queue nobody reads."""
    writer = BrowserVideoWriter(tmp_path / "missing folder" / "out.mp4", 25.0, (64, 48))
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="ffmpeg could not write out.mp4"):
        for _ in range(10 * BrowserVideoWriter.QUEUE_FRAMES):
            writer.write(frame)
    with pytest.raises(ValueError, match="ffmpeg could not write out.mp4"):
        writer.release()


def test_discard_stops_an_encoder_with_a_full_queue(tmp_path):
    writer = BrowserVideoWriter(tmp_path / "partial.mp4", 25.0, (640, 480))
    for _ in range(BrowserVideoWriter.QUEUE_FRAMES):
        writer.write(np.zeros((480, 640, 3), np.uint8))
    writer.discard()
    assert not (tmp_path / "partial.mp4").exists()
