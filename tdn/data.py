"""Datasets in the official TDN list formats, segment sampling and augmentation.

List files, one clip per line, paths relative to ``root`` (spaces in paths are fine: the
numbers are taken from the end of the line):

- ``frames``: ``path num_frames label`` - a folder of frames named by ``image_template``
  (1-based, e.g. ``img_00001.jpg``), as the official code reads Something-Something.
- ``video``: ``path label`` (or ``path num_frames label``; the count is then ignored) - a
  video file OpenCV/FFmpeg can decode.

Segments are sampled as :mod:`tdn.sampling` describes: at random within each segment's share
for training, TDN's test indices for testing (shared with ``tdn predict``); or, with
``window_seconds`` (``train.sampling: time_grid``, video lists), on the live scheduler's time grid
over the video's frame times (``k / fps``): a random window for training, the middle one (or
``C`` evenly placed ones) for testing.

Augmentation for training (the official recipe): a multi-scale crop - square-ish crops whose
sides are drawn from ``{1, .875, .75, .66} x`` the short side (width and height at most one
scale step apart), at one of 13 fixed positions (corners, edge centres, centre, quarter
points) - resized to ``input_size``, then a horizontal flip with probability 1/2 that also
swaps the labels of mirror-image classes (``flip_swap``, e.g. left <-> right). Testing resizes
the short side to ``resize_short`` and crops ``input_size`` (centre, or left/centre/right for
3 crops) with :mod:`tdn.transforms`, exactly as the live pipeline does; test videos are
read as ``tdn predict`` reads them (:func:`tdn.video.read_clip_frames`: resized as decoded,
refused above ``limit_mb``).

A clip that cannot be used (missing, not a video, a directory or FIFO, absurd geometry, too
large) does not stop a run: its item is a :class:`BadClip` naming it and why, which
:func:`collate_clips` sets aside, so ``tdn eval`` and ``tdn train`` skip and report it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tdn.registry import DATA_FORMATS
from tdn.sampling import (SEGMENT_LENGTH, clip_frame_indices, frame_indices, grid_window_indices, parse_views,
                          train_segment_starts)
from tdn.transforms import PreprocessSpec, SegmentTransform
from tdn.video import check_memory, memory_need, probe_clip, probe_video, read_clip_frames, read_frames

SCALES = (1.0, 0.875, 0.75, 0.66)


@dataclass(frozen=True)
class ClipRecord:
    """One line of a list file."""

    path: Path
    label: int
    num_frames: int | None = None  # given by frame lists; counted from the file for videos


def read_list(list_path: str | Path, *, data_format: str = "video", root: str | Path = "") -> list[ClipRecord]:
    """Parse a TDN list file; errors name the file, the line and what was expected."""
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {', '.join(DATA_FORMATS)}, got {data_format!r}")
    list_path = Path(list_path)
    if not list_path.is_file():
        raise FileNotFoundError(f"list file not found: {list_path}")
    expected = "path num_frames label" if data_format == "frames" else "path label"
    records = []
    for number, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=2 if data_format == "frames" else 1)
        if data_format == "video" and len(parts) == 2 and " " in parts[0]:
            head, _, maybe_count = parts[0].rpartition(" ")
            if maybe_count.isdigit():  # "path num_frames label": the count is not needed
                parts = [head, parts[1]]
        try:
            label = int(parts[-1])
            count = int(parts[1]) if data_format == "frames" else None
        except (ValueError, IndexError):
            raise ValueError(f"{list_path}:{number}: expected '{expected}', got {line!r}") from None
        if len(parts) != (3 if data_format == "frames" else 2) or label < 0 or (count is not None and count < 1):
            raise ValueError(f"{list_path}:{number}: expected '{expected}' with a label >= 0, got {line!r}")
        records.append(ClipRecord(Path(root) / parts[0], label, count))
    if not records:
        raise ValueError(f"list file {list_path} has no clips")
    return records


def multiscale_crop_box(height: int, width: int, input_size: int, rng: np.random.Generator,
                        scales: Sequence[float] = SCALES, max_distort: int = 1) -> tuple[int, int, int, int]:
    """A training crop ``(y0, x0, crop_h, crop_w)``: sides from ``scales`` x the short side, at a fixed position."""
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    sizes = [input_size if abs(s - input_size) < 3 else s for s in sizes]
    pairs = [(h, w) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    sx, sy = (width - crop_w) / 4, (height - crop_h) / 4
    # 13 positions in quarter steps: corners, edge centres, centre and the four quarter points.
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    gx, gy = grid[int(rng.integers(len(grid)))]
    return int(gy * sy), int(gx * sx), crop_h, crop_w


def parse_flip_swap(text: str | None, num_classes: int | None = None) -> dict[int, int]:
    """``"0:1,4:5"`` -> ``{0: 1, 1: 0, 4: 5, 5: 4}``: classes exchanged by a horizontal flip."""
    if not text:
        return {}
    swap: dict[int, int] = {}
    for pair in text.split(","):
        a, sep, b = pair.strip().partition(":")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit():
            raise ValueError(f"flip_swap expects class pairs 'a:b,c:d', got {text!r}")
        a, b = int(a), int(b)
        if num_classes is not None and max(a, b) >= num_classes:
            raise ValueError(f"flip_swap pair {a}:{b} names a class >= the {num_classes} classes")
        if a in swap or b in swap or a == b:
            raise ValueError(f"flip_swap lists class {a if a in swap or a == b else b} twice in {text!r}")
        swap[a], swap[b] = b, a
    return swap


def read_video_frames(path: Path, indices: Sequence[int]) -> tuple[dict[int, np.ndarray], int]:
    """RGB frames at ``indices`` from one pass over a video, and the number of frames decoded.

    Stops after the last wanted index, so the count is only complete when it is below that.
    """
    frames, count = read_frames(Path(path), set(indices), stop_after_last=bool(indices))
    if count == 0:
        raise ValueError(f"{path} has no decodable video frames")
    return frames, count


@dataclass(frozen=True)
class BadClip:
    """A dataset item that could not be read: the clip and why."""

    path: str
    error: str  # without the path when the message began with it

    @classmethod
    def of(cls, path: Path, exc: Exception) -> "BadClip":
        message = str(exc)
        for prefix in (f"{path}: ", f"{path} "):
            message = message.removeprefix(prefix)
        return cls(str(path), message)

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


# what reading a clip raises for a bad file (cv2.error: a decoder assertion on a damaged file)
CLIP_ERRORS = (ValueError, OSError, cv2.error)


def collate_clips(batch: Sequence[tuple[torch.Tensor | BadClip, int]]):
    """DataLoader ``collate_fn``: ``(clips, labels, bad)`` - the readable items stacked (``clips`` None
    when there are none) and the :class:`BadClip` items set aside."""
    good = [(clip, label) for clip, label in batch if not isinstance(clip, BadClip)]
    bad = [clip for clip, _ in batch if isinstance(clip, BadClip)]
    if not good:
        return None, torch.zeros(0, dtype=torch.int64), bad
    clips, labels = torch.utils.data.default_collate(good)
    return clips, labels, bad


class ClipDataset(torch.utils.data.Dataset):
    """Clips of a TDN list as model input.

    ``train=True``: one randomly sampled, augmented view -> ``(T, L, 3, S, S)``.
    ``train=False``: the test views (``"1x1"`` or ``"10x3"``) -> ``(V, T, L, 3, S, S)``.
    ``window_seconds``: sample windows on the live time grid spanning that long (video lists only;
    None: TSN segments over the whole clip), with neighbours ``segment_step_s`` apart (:mod:`tdn.sampling`).
    Items are ``(clip, label)``, or ``(BadClip, label)`` for a clip that cannot be read (batch them
    with :func:`collate_clips`); random draws come from torch's generator, so a seeded DataLoader
    repeats the same augmentations.
    """

    def __init__(self, records: Sequence[ClipRecord], *, num_segments: int, spec: PreprocessSpec,
                 train: bool, views: str = "1x1", data_format: str = "video",
                 image_template: str = "img_{:05d}.jpg", flip: bool = True, flip_swap: dict[int, int] | None = None,
                 limit_mb: float | None = None, window_seconds: float | None = None,
                 segment_step_s: float = 0.0):
        if window_seconds is not None and data_format != "video":
            raise ValueError("time-grid sampling (window_seconds) needs video lists: frame folders have no frame times")
        self.records = list(records)
        self.num_segments = num_segments
        self.spec = spec
        self.train = train
        self.clips, self.positions = parse_views(views)
        self.data_format = data_format
        self.image_template = image_template
        self.flip = flip
        self.flip_swap = dict(flip_swap or {})
        self.window_seconds = window_seconds
        self.segment_step_s = segment_step_s
        self.limit_mb = limit_mb  # test items needing more (frames and views, pipeline.clip_memory_mb) are refused
        self._test_transform = SegmentTransform(spec)
        self._mean = torch.tensor(spec.mean).view(3, 1, 1)
        self._std = torch.tensor(spec.std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.records)

    def _frames(self, record: ClipRecord, choose) -> list[np.ndarray]:
        """Frames for the indices ``choose(num_frames, fps)`` returns, in that order (fps None for frame folders)."""
        if self.data_format == "frames":
            indices = choose(record.num_frames, None)
            return [self._image(record.path, i) for i in indices]
        info = probe_clip(record.path, self.spec.resize_short)
        count = info.declared
        if count == 0:  # the container does not say: count by decoding
            _, count = read_video_frames(record.path, [])
        indices = choose(count, info.fps)
        frames, decoded = read_video_frames(record.path, indices)
        if decoded <= max(indices):  # the container over-counted: sample again from the true count
            indices = choose(decoded, info.fps)
            frames, _ = read_video_frames(record.path, indices)
        return [frames[i] for i in indices]

    def _image(self, folder: Path, index: int) -> np.ndarray:
        path = folder / self.image_template.format(index + 1)  # frame files are numbered from 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"frame image not found or unreadable: {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _test_frames(self, record: ClipRecord) -> list[np.ndarray]:
        """The test views' frames in order; videos are read as ``tdn predict`` reads them."""
        t, clips = self.num_segments, self.clips
        if self.window_seconds is not None:
            return self._frames(record, lambda n, fps: [i for c in range(clips) for i in grid_window_indices(
                np.arange(n) / fps, t, self.window_seconds, (c + 0.5) / clips, self.segment_step_s)])
        if self.data_format == "frames":
            return self._frames(record, lambda n, _: [i for c in range(clips) for i in clip_frame_indices(n, t, clip=c,
                                                                                                       clips=clips)])
        info = probe_clip(record.path, self.spec.resize_short)
        need = memory_need(info.size, self.spec, kept_frames=clips * t * SEGMENT_LENGTH,
                           input_views=clips * len(self.positions), num_segments=t)
        check_memory(record.path, need, self.limit_mb, f"{clips * len(self.positions)} views x {t} segments of "
                                                       f"{info.size[1]}x{info.size[0]} frames")
        step = self.segment_step_s
        frames, count = read_clip_frames(record.path, info, t, clips, self.spec.resize_short, step_s=step)
        return [frames[i] for c in range(clips)
                for i in clip_frame_indices(count, t, clip=c, clips=clips, fps=info.fps, step_s=step)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor | BadClip, int]:
        record = self.records[index]
        try:
            return self._item(record)
        except CLIP_ERRORS as exc:
            return BadClip.of(record.path, exc), record.label

    def _item(self, record: ClipRecord) -> tuple[torch.Tensor, int]:
        t, length = self.num_segments, SEGMENT_LENGTH
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            if self.window_seconds is not None:
                position = float(rng.random())
                frames = self._frames(record, lambda n, fps: grid_window_indices(
                    np.arange(n) / fps, t, self.window_seconds, position, self.segment_step_s))
            else:
                frames = self._frames(record, lambda n, _: frame_indices(train_segment_starts(n, t, rng), n))
            clip, flipped = self._augment(frames, rng)
            label = self.flip_swap.get(record.label, record.label) if flipped else record.label
            return clip.view(t, length, *clip.shape[1:]), label  # (T*L, 3, S, S) -> (T, L, 3, S, S)
        per_clip = []
        frames = self._test_frames(record)
        for c in range(self.clips):
            chunk = frames[c * t * length:(c + 1) * t * length]
            segments = [chunk[s * length:(s + 1) * length] for s in range(t)]
            for position in self.positions:
                per_clip.append(self._test_transform.segments(segments, [position] * t))  # (T, L, 3, S, S)
        return torch.stack(per_clip), record.label  # (V, T, L, 3, S, S)

    def _augment(self, frames: list[np.ndarray], rng: np.random.Generator) -> tuple[torch.Tensor, bool]:
        """Multi-scale crop, resize, flip, normalise: ``T*L`` frames -> ``(T*L, 3, S, S)`` float32."""
        size = self.spec.input_size
        stacked = torch.from_numpy(np.stack(frames))  # (F, H, W, 3) uint8
        y0, x0, ch, cw = multiscale_crop_box(stacked.shape[1], stacked.shape[2], size, rng)
        crop = stacked[:, y0:y0 + ch, x0:x0 + cw].permute(0, 3, 1, 2)  # (F, h, w, 3) -> (F, 3, h, w)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        flipped = self.flip and bool(rng.random() < 0.5)
        if flipped:
            crop = crop.flip(-1)
        return (crop.float() / 255.0 - self._mean) / self._std, flipped


def clip_seconds_of(records: Sequence[ClipRecord], limit: int = 50) -> float | None:
    """Median duration of (up to ``limit``) video clips, in seconds; None when unknown."""
    durations = []
    for record in records[:limit]:
        try:
            info = probe_video(record.path)
        except (ValueError, OSError):
            continue  # a bad clip is reported when it is loaded
        if info.declared:
            durations.append(info.declared / info.fps)
    return float(np.median(durations)) if durations else None
