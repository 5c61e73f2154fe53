"""Preprocessing: size/crop geometry tables, the one layout function, DALI-vs-CPU parity
(DALI's CPU operators always; its GPU operators whenever CUDA exists), DALI's video decoder,
and the clip test protocol."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from media import moving_square_frames, write_not_a_video, write_video, write_video_ffmpeg
from pipelines.clip import predict_clip
from pipelines.engine import InferenceEngine
from pipelines.preprocess import CpuPreprocessor, border_tolerance, create_preprocessor, resolve_backend, tolerance
from tdn.api import load_model
from tdn.sampling import clip_frame_indices, segment_starts
from tdn.transforms import THREE_CROPS, PreprocessSpec, crop_origin, crop_positions, resized_size, to_model_layout
from tdn.video import ClipError

T = 4
SPEC = PreprocessSpec(resize_short=72, input_size=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DALI_DEVICES = ["cpu", pytest.param("gpu", marks=NO_CUDA)]


@pytest.fixture(scope="module")
def model():
    """A tiny random TDN whose head is scaled up so classes are well separated (top-1 is meaningful)."""
    torch.manual_seed(0)
    m = load_model(arch="resnet18", num_segments=T, num_classes=6, precision="fp32")
    m.meta.resize_short, m.meta.input_size = SPEC.resize_short, SPEC.input_size
    with torch.no_grad():
        m.fc.weight.normal_(0, 0.5)
    return m


def textured_segments(sizes, seed=0):
    """One 5-frame segment per (height, width): smooth random texture plus a moving bright square."""
    import cv2

    rng = np.random.default_rng(seed)
    segments = []
    for h, w in sizes:
        base = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)
        seg = []
        for i in range(5):
            frame = base.copy()
            x = (i * w // 10) % max(1, w - h // 3)
            frame[h // 3: 2 * h // 3, x: x + h // 3] = (250, 240, 30)
            seg.append(frame)
        segments.append(seg)
    return segments


@pytest.mark.parametrize("hw, short, expected", [
    ((480, 640), 256, (256, 341)),
    ((640, 480), 256, (341, 256)),
    ((100, 133), 50, (50, 67)),   # 66.5 rounds half up, as DALI does
    ((48, 64), 72, (72, 96)),     # upscaling
    ((50, 50), 40, (40, 40)),
])
def test_resized_size_table(hw, short, expected):
    assert resized_size(*hw, short) == expected


@pytest.mark.parametrize("size, crop, position, expected", [
    (341, 224, 0.5, 59), (9, 4, 0.5, 3), (10, 4, 0.5, 3), (11, 4, 0.5, 4), (341, 224, 0.0, 0), (341, 224, 1.0, 117),
])
def test_crop_origin_table(size, crop, position, expected):
    assert crop_origin(size, crop, position) == expected


def test_crop_positions_follow_the_long_side():
    assert crop_positions(48, 64, 0.0) == (0.0, 0.5)
    assert crop_positions(64, 48, 1.0) == (0.5, 1.0)


def test_to_model_layout_moves_channels_and_splits_leading_dims():
    fhwc = torch.arange(2 * 3 * 5 * 4 * 6 * 3, dtype=torch.float32).reshape(30, 4, 6, 3)
    out = to_model_layout(fhwc, 2, 3, 5)
    assert out.shape == (2, 3, 5, 3, 4, 6)
    assert out[1, 2, 4, 2, 3, 5] == fhwc[1 * 15 + 2 * 5 + 4, 3, 5, 2]
    with pytest.raises(ValueError, match="F = 31"):
        to_model_layout(fhwc, 31)


def test_cpu_backend_normalises_with_mean_and_std():
    grey = [np.full((72, 96, 3), 128, np.uint8)] * 5
    out = CpuPreprocessor(SPEC).segments([grey])
    assert out.shape == (1, 5, 3, 64, 64) and out.dtype == torch.float32
    for c in range(3):
        assert out[0, :, c].unique().tolist() == pytest.approx([(128 / 255 - SPEC.mean[c]) / SPEC.std[c]], abs=1e-5)


def test_bad_frames_are_rejected_with_a_clear_error():
    pre = CpuPreprocessor(SPEC)
    with pytest.raises(ValueError, match="uint8"):
        pre.segments([[np.zeros((8, 8, 3), np.float32)] * 5])
    with pytest.raises(ValueError, match="one size"):
        pre.segments([[np.zeros((8, 8, 3), np.uint8)] * 4 + [np.zeros((9, 8, 3), np.uint8)]])
    with pytest.raises(ValueError, match="backend must be one of"):
        create_preprocessor(SPEC, "opencl")


@pytest.mark.parametrize("cuda, expected", [(False, "cpu"), (True, "dali")])
def test_auto_backend_follows_cuda(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_backend("auto") == expected
    assert resolve_backend("cpu") == "cpu"  # an explicit choice stands
    with pytest.raises(ValueError, match="must be one of auto, dali, cpu; got 'gpu'"):
        resolve_backend("gpu")


def _border_mask(height: int, width: int, position: float) -> torch.Tensor:
    """Output pixels that lie on the resized frame's outermost row/column."""
    rh, rw = resized_size(height, width, SPEC.resize_short)
    px, py = crop_positions(rh, rw, position)
    x0, y0, s = crop_origin(rw, SPEC.input_size, px), crop_origin(rh, SPEC.input_size, py), SPEC.input_size
    mask = torch.zeros(s, s, dtype=torch.bool)
    mask[:, 0] |= x0 == 0
    mask[:, -1] |= x0 + s == rw
    mask[0, :] |= y0 == 0
    mask[-1, :] |= y0 + s == rh
    return mask


@pytest.mark.parametrize("device", DALI_DEVICES)
def test_dali_matches_cpu_backend_within_tolerance_and_top1(device, model):
    from pipelines.dali_backend import DaliPreprocessor

    sizes = [(48, 64), (64, 48), (100, 133), (72, 72), (240, 320), (30, 40), (96, 128), (72, 96)]
    segments = textured_segments(sizes)
    positions = [0.5, 0.0, 1.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    cpu = CpuPreprocessor(SPEC).segments(segments, positions)
    dali = DaliPreprocessor(SPEC, device=device, max_segments=3)  # 8 segments: three DALI runs
    out = dali.segments(segments, positions)
    assert out.device.type == ("cuda" if device == "gpu" else "cpu")
    out = out.cpu()
    assert out.shape == cpu.shape == (8, 5, 3, 64, 64)
    for i, (h, w) in enumerate(sizes):
        diff = (out[i] - cpu[i]).abs().amax(dim=(0, 1))  # (L, 3, S, S) -> (S, S)
        border = _border_mask(h, w, positions[i])
        assert diff[~border].max().item() <= tolerance(SPEC), (h, w)
        if border.any():
            assert diff[border].max().item() <= border_tolerance(SPEC), (h, w)
    assert (out - cpu).abs().mean().item() < 0.25 / (255 * 0.225)  # a quarter of a level on average
    with torch.inference_mode():
        windows_cpu = cpu.reshape(2, T, 5, 3, 64, 64)  # (8, L, 3, S, S) -> (2, T, L, 3, S, S)
        windows_dali = out.reshape(2, T, 5, 3, 64, 64)
        assert torch.equal(model(windows_cpu).argmax(1), model(windows_dali).argmax(1))


@pytest.mark.parametrize("device", DALI_DEVICES)
def test_dali_video_decoder_gives_the_cpu_clip_prediction(device, model, tmp_path):
    """A VP9 WebM clip (decodable by DALI on CPU and GPU), scored by both backends."""
    from pipelines.dali_backend import DaliPreprocessor

    frames = moving_square_frames(50, width=96, height=72, square=20)
    clip = write_video_ffmpeg(tmp_path / "clip.webm", frames, codec="libvpx-vp9",
                              extra_args=["-crf", "10", "-b:v", "0"])
    dali = DaliPreprocessor(SPEC, device=device)
    assert dali.can_decode(str(clip))
    cpu_engine = InferenceEngine(model, CpuPreprocessor(SPEC))
    dali_engine = InferenceEngine(model, dali)
    for views in ("1x1", "10x3"):
        a = predict_clip(cpu_engine, clip, views=views)
        b = predict_clip(dali_engine, clip, views=views)
        assert a.frames == b.frames == 50
        assert a.scores.argmax() == b.scores.argmax()
        # DALI's and OpenCV's YUV->RGB conversions differ by a few levels: scores stay close
        assert np.abs(a.scores - b.scores).max() < 0.05


def test_dali_on_cpu_leaves_h264_to_opencv(model, tmp_path):
    from pipelines.dali_backend import DaliPreprocessor

    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(30, width=96, height=72))
    dali = DaliPreprocessor(SPEC, device="cpu")
    if not torch.cuda.is_available():
        assert not dali.can_decode(str(clip))
        assert dali.decode_segments(str(clip), [0, 1, 2, 3, 4], (72, 96), [0.5]) is None
    result = predict_clip(InferenceEngine(model, dali), clip)
    reference = predict_clip(InferenceEngine(model, CpuPreprocessor(SPEC)), clip)
    assert result.scores.argmax() == reference.scores.argmax()


# -- the clip protocol ---------------------------------------------------------------------------
def test_segment_starts_follow_tdn_test_indices():
    assert segment_starts(100, 4) == [12, 36, 60, 84]  # tick (100 - 5 + 1) / 4 = 24, start = int(tick * (t + 0.5))
    assert segment_starts(8, 4) == [0, 0, 0, 0]  # too short: every segment starts at 0
    assert clip_frame_indices(8, 4)[:5] == [0, 1, 2, 3, 4]
    assert clip_frame_indices(3, 2) == [0, 1, 2, 2, 2, 0, 1, 2, 2, 2]  # past the end: the last frame
    dense = [segment_starts(100, 4, clip=c, clips=10) for c in range(10)]
    assert dense[0][0] == 1 and dense[9][-1] == 94  # int(24 * 0.05), int(24 * 3.95)
    assert all(a < b for a, b in zip([d[0] for d in dense], [d[0] for d in dense][1:]))


def test_clip_prediction_views_and_windows(model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", moving_square_frames(60, width=96, height=72))
    engine = InferenceEngine(model, CpuPreprocessor(SPEC), max_batch=4)
    seen = []
    result = predict_clip(engine, clip, views="10x3", per_window=True, window_seconds=1.0,
                          progress=lambda fraction, message: seen.append(fraction))
    assert result.frames == 60 and result.fps == pytest.approx(25.0)
    assert result.scores.shape == (6,) and result.scores.sum() == pytest.approx(1.0, abs=1e-5)
    # 2.4 s at 25 fps, windows of 1 s with T=4 (a new centre every 0.25 s): the live scheduler's windows
    assert len(result.windows) == 6
    assert [w.time for w in result.windows] == sorted(w.time for w in result.windows)
    side = SPEC.input_size // 4  # each window keeps its newest segment's S-TDM response for the annotated video
    assert all(w.response.shape == (side, side) and w.response.dtype == np.float16 for w in result.windows)
    assert all(np.isfinite(w.response).all() and w.response.max() > 0 for w in result.windows)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert len(engine.cache) == 0  # the clip's private cache entries are dropped afterwards
    single = predict_clip(engine, clip, views="1x1")
    assert single.windows is None and single.scores.shape == (6,)


def test_clip_per_window_matches_direct_model_call(model, tmp_path):
    """Per-window results through the cache equal the model run on the same windows directly."""
    clip = write_video(tmp_path / "clip.avi", moving_square_frames(45, width=96, height=72), fourcc="MJPG")
    pre = CpuPreprocessor(SPEC)
    cached = predict_clip(InferenceEngine(model, pre, max_batch=3), clip, per_window=True, window_seconds=1.0)
    fresh = predict_clip(InferenceEngine(model, pre, max_batch=1, cache_segments=False), clip, per_window=True,
                         window_seconds=1.0)
    assert len(cached.windows) == len(fresh.windows) > 1
    for a, b in zip(cached.windows, fresh.windows):
        assert a.time == b.time
        assert (a.logits - b.logits).abs().max().item() <= 1e-4
        np.testing.assert_allclose(a.response.astype(np.float32), b.response.astype(np.float32), rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("make, error, match", [
    (lambda p: p / "missing.mp4", FileNotFoundError, "not found"),
    (lambda p: (p / "empty.mp4").write_bytes(b"") or p / "empty.mp4", ClipError, "empty"),
    (lambda p: write_not_a_video(p / "text.mp4"), ClipError, "text.mp4"),
])
def test_bad_clips_raise_errors_naming_the_file(make, error, match, model, tmp_path):
    engine = InferenceEngine(model, CpuPreprocessor(SPEC))
    with pytest.raises(error, match=match):
        predict_clip(engine, make(tmp_path))


def test_three_crops_cover_the_long_side(model):
    """Left, centre and right crops of a frame whose halves differ give different inputs."""
    frame = np.zeros((72, 144, 3), np.uint8)
    frame[:, 72:] = 255
    out = CpuPreprocessor(SPEC).segments([[frame] * 5] * 3, THREE_CROPS)
    means = out.mean(dim=(1, 2, 3, 4))
    assert means[0] < means[1] < means[2]
