"""List parsing, TSN segment sampling, augmentation and flip label swaps, on real video and frame files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tdn.data import SCALES, BadClip, ClipDataset, multiscale_crop_box, parse_flip_swap, read_list
from tdn.sampling import clip_frame_indices, frame_indices, train_segment_starts
from tdn.transforms import PreprocessSpec
from tdn.video import write_video

SPEC = PreprocessSpec(resize_short=40, input_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def index_clip(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frame i is red level 4 * i everywhere, with blue rising from left to right (flip marker)."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    frames[..., 0] = (4 * np.arange(num_frames))[:, None, None]
    frames[..., 1] = 128
    frames[..., 2] = np.linspace(0, 255, width).astype(np.uint8)[None, None, :]
    return frames


def decoded_indices(clip: torch.Tensor) -> np.ndarray:
    """Frame indices from the red level of normalised frames ``(..., 3, S, S)``."""
    red = clip[..., 0, :, :] * 0.25 + 0.5  # undo normalisation -> [0, 1]
    return np.rint(red.mean(dim=(-1, -2)).numpy() * 255 / 4).astype(int)


@pytest.mark.parametrize("num_frames, num_segments", [(50, 8), (100, 8), (40, 16), (13, 8), (9, 8), (6, 8)])
def test_train_starts_follow_tsn_shares(num_frames, num_segments):
    length = 5
    average = (num_frames - length + 1) // num_segments
    for seed in range(20):
        starts = train_segment_starts(num_frames, num_segments, np.random.default_rng(seed))
        assert len(starts) == num_segments
        if average > 0:  # one start inside each segment's share
            assert all(t * average <= s < (t + 1) * average for t, s in enumerate(starts))
        elif num_frames > num_segments:  # sorted random starts within the clip
            assert starts == sorted(starts) and 0 <= min(starts) and max(starts) <= num_frames - length
        else:
            assert starts == [0] * num_segments


def test_train_starts_are_random_and_seeded():
    draws = {tuple(train_segment_starts(50, 8, np.random.default_rng(s))) for s in range(10)}
    assert len(draws) > 5
    once, again = (train_segment_starts(50, 8, np.random.default_rng(3)) for _ in range(2))
    assert once == again


def test_frame_indices_repeat_the_last_frame():
    assert frame_indices([0, 7], 9) == [0, 1, 2, 3, 4, 7, 8, 8, 8, 8]


def test_multiscale_crop_boxes_stay_inside_and_use_the_scales():
    rng = np.random.default_rng(0)
    allowed = {int(120 * s) for s in SCALES} | {112}
    for _ in range(200):
        y0, x0, h, w = multiscale_crop_box(120, 160, 112, rng)
        assert h in allowed and w in allowed
        assert 0 <= y0 and y0 + h <= 120 and 0 <= x0 and x0 + w <= 160


def test_read_list_formats_and_errors(tmp_path):
    (tmp_path / "v.txt").write_text("a dir/clip one.mp4 3\nb.mp4 120 0\n\n# comment\n")
    records = read_list(tmp_path / "v.txt", root=tmp_path)
    assert [(r.path.name, r.label) for r in records] == [("clip one.mp4", 3), ("b.mp4", 0)]
    assert records[0].path == tmp_path / "a dir" / "clip one.mp4"
    (tmp_path / "f.txt").write_text("frames/x 30 2\n")
    (record,) = read_list(tmp_path / "f.txt", data_format="frames")
    assert (str(record.path), record.num_frames, record.label) == ("frames/x", 30, 2)
    (tmp_path / "bad.txt").write_text("ok.mp4 1\nbroken.mp4 x\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 'path label'"):
        read_list(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="path num_frames label"):
        read_list(tmp_path / "v.txt", data_format="frames")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_list(tmp_path / "missing.txt")


def test_parse_flip_swap():
    assert parse_flip_swap("0:1, 4:5") == {0: 1, 1: 0, 4: 5, 5: 4}
    assert parse_flip_swap(None) == {}
    for bad in ("0-1", "0:1,1:2", "3:3", "a:b"):
        with pytest.raises(ValueError, match="flip_swap"):
            parse_flip_swap(bad)
    with pytest.raises(ValueError, match="9 classes"):
        parse_flip_swap("0:9", num_classes=9)


@pytest.fixture(scope="module")
def video_list(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    write_video(root / "c.mp4", index_clip(50), fps=25)
    (root / "list.txt").write_text("c.mp4 0\n")
    return read_list(root / "list.txt", root=root)


def test_test_views_sample_the_standard_indices(video_list):
    ds = ClipDataset(video_list, num_segments=8, spec=SPEC, train=False, views="10x3")
    views, label = ds[0]
    assert views.shape == (30, 8, 5, 3, 32, 32) and label == 0
    for clip in range(10):  # 3 crops per temporal clip, all from the same frames
        expected = np.array(clip_frame_indices(50, 8, clip=clip, clips=10)).reshape(8, 5)
        got = decoded_indices(views[3 * clip + 1])  # the centre crop
        assert np.abs(got - expected).max() <= 1, (clip, got, expected)


def test_a_model_with_a_segment_step_gets_whole_clip_views_with_its_spans(video_list):
    """The whole-clip protocol with segment step 0.1 s on a 25 fps file: each segment's neighbours are
    the frames nearest to +-0.1 s and +-0.2 s (about 2 and 5 frames) around its centre, inside the clip,
    the same rule as the live time grid; the decoded frames are those."""
    ds = ClipDataset(video_list, num_segments=8, spec=SPEC, train=False, views="1x1", segment_step_s=0.1)
    views, _ = ds[0]
    expected = np.array(clip_frame_indices(50, 8, fps=25, step_s=0.1)).reshape(8, 5)
    assert np.abs(decoded_indices(views[0]) - expected).max() <= 1
    for segment in expected:
        offsets = segment - segment[2]
        assert offsets[0] == -5 and offsets[-1] == 5 and set(offsets[1:4]) <= {-3, -2, 0, 2, 3}, segment
        assert segment.min() >= 0 and segment.max() <= 49
    assert clip_frame_indices(50, 8, fps=8, step_s=0.1) == clip_frame_indices(50, 8)  # below 10 fps: adjacent frames


def test_train_items_sample_within_shares_and_swap_labels_when_flipped(video_list):
    torch.manual_seed(0)
    ds = ClipDataset(video_list, num_segments=8, spec=SPEC, train=True, flip_swap={0: 1, 1: 0})
    flips = 0
    for _ in range(12):
        clip, label = ds[0]
        assert clip.shape == (8, 5, 3, 32, 32)
        # Blue rises from left to right in the file: after a flip it falls.
        blue = clip[..., 2, :, :]
        flipped = bool(blue[..., :, :8].mean() > blue[..., :, -8:].mean())
        flips += flipped
        assert label == (1 if flipped else 0)
        if not flipped:  # consecutive frames within a segment, one segment start per share
            got = decoded_indices(clip)
            starts = got[:, 0]
            assert np.abs(np.diff(got, axis=1) - 1).max() <= 1
            assert all(t * 5 - 1 <= s <= (t + 1) * 5 for t, s in enumerate(starts)), starts
    assert 0 < flips < 12


def test_frame_folders(tmp_path):
    frames = index_clip(20)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img_{i + 1:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "list.txt").write_text("clip 20 4\n")
    records = read_list(tmp_path / "list.txt", data_format="frames", root=tmp_path)
    ds = ClipDataset(records, num_segments=4, spec=SPEC, train=False, data_format="frames")
    views, label = ds[0]
    assert views.shape == (1, 4, 5, 3, 32, 32) and label == 4
    expected = np.array(clip_frame_indices(20, 4)).reshape(4, 5)
    assert np.abs(decoded_indices(views[0]) - expected).max() <= 1
    (tmp_path / "short.txt").write_text("clip 25 4\n")  # more frames listed than on disk
    bad = ClipDataset(read_list(tmp_path / "short.txt", data_format="frames", root=tmp_path), num_segments=4,
                      spec=SPEC, train=False, data_format="frames")
    item, label = bad[0]  # skipped and named, not raised inside a DataLoader worker
    assert isinstance(item, BadClip) and item.path == str(folder) and "img_00021.jpg" in item.error and label == 4
