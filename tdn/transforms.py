"""TDN's test transform: raw uint8 RGB frames -> the model's normalised float32 layout.

Three steps per frame, shared by evaluation, ``tdn predict`` and every live preprocessing
backend:

1. resize so the short side is ``resize_short`` (bilinear, antialiased when shrinking;
   the long side is ``round_half_up(long * resize_short / short)``),
2. crop ``input_size`` x ``input_size`` at a position along the long side (0 = left/top,
   0.5 = centre, 1 = right/bottom; the short side is always centred; the crop's first pixel is
   ``floor((size - crop) * position + 0.5)``),
3. scale to [0, 1] and normalise with the model's mean/std.

Frames are kept in DALI's ``FHWC`` order until :func:`to_model_layout`, the one place that
turns them into the model's ``(..., C, H, W)`` layout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CENTRE = 0.5
THREE_CROPS = (0.0, 0.5, 1.0)  # along the long side: left/top, centre, right/bottom


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects: short side before cropping, crop size, mean and std on [0, 1]."""

    resize_short: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_meta(cls, meta) -> "PreprocessSpec":
        """From a model's ``meta`` (:class:`tdn.meta.ModelMeta`)."""
        return cls(int(meta.resize_short), int(meta.input_size), tuple(map(float, meta.mean)),
                   tuple(map(float, meta.std)))

    def __post_init__(self):
        if self.input_size > self.resize_short:
            raise ValueError(f"input_size ({self.input_size}) must not exceed resize_short ({self.resize_short})")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values each, std > 0; got mean={self.mean}, std={self.std}")


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def resized_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(height, width)`` after scaling the short side to ``short``: (480, 640), 256 -> (256, 341)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if height <= width:
        return short, max(short, _round_half_up(width * short / height))
    return max(short, _round_half_up(height * short / width)), short


def resize_short_side(frames: torch.Tensor, short: int) -> torch.Tensor:
    """uint8 ``(F, H, W, C)`` -> ``(F, rh, rw, C)`` with the short side ``short`` (step 1 above);
    returned as is when it already has that size, so resizing early (as clips are decoded) and
    again here gives the same pixels as resizing once."""
    h, w = frames.shape[1:3]
    rh, rw = resized_size(h, w, short)
    if (rh, rw) == (h, w):
        return frames
    # (F, H, W, C) -> (F, C, H, W) as a channels-last view: torch's fast uint8 path
    resized = F.interpolate(frames.permute(0, 3, 1, 2), size=(rh, rw), mode="bilinear", antialias=True,
                            align_corners=False)
    return resized.permute(0, 2, 3, 1)  # (F, C, rh, rw) -> (F, rh, rw, C)


def crop_origin(size: int, crop: int, position: float) -> int:
    """First pixel of a ``crop``-long window placed at ``position`` (0..1) along ``size`` pixels."""
    return int(math.floor((size - crop) * position + 0.5))


def crop_positions(height: int, width: int, position: float) -> tuple[float, float]:
    """``(x, y)`` crop positions for a long-side ``position``; the short side stays centred."""
    return (position, CENTRE) if width >= height else (CENTRE, position)


def to_model_layout(frames: torch.Tensor, *leading: int) -> torch.Tensor:
    """The one layout change between DALI's ``FHWC`` and the model's layout.

    ``frames`` ``(F, H, W, C)`` with ``F = prod(leading)`` -> ``(*leading, C, H, W)``, e.g.
    ``to_model_layout(x, n, t, 5)`` gives a window batch ``(N, T, L, 3, H, W)``. The result is
    a view with channels innermost in memory (each frame is ``channels_last``, what the
    model's fast path wants), so no copy is made.
    """
    if frames.dim() != 4 or frames.shape[0] != math.prod(leading):
        raise ValueError(f"expected (F, H, W, C) frames with F = {math.prod(leading)}, got {tuple(frames.shape)}")
    chw = frames.permute(0, 3, 1, 2)  # (F, H, W, C) -> (F, C, H, W), channels_last strides
    return chw.reshape(*leading, *chw.shape[1:])  # (F, C, H, W) -> (*leading, C, H, W), a view


def check_segments(segments: Sequence[Sequence[np.ndarray]], positions: Sequence[float] | None) -> list[float]:
    """Validate M segments of L uint8 ``(H, W, 3)`` frames (one size within a segment) and their crop
    positions; returns the positions (default: centre). ValueError saying what is wrong."""
    if not segments:
        raise ValueError("no segments to preprocess")
    length = len(segments[0])
    for i, seg in enumerate(segments):
        if len(seg) != length:
            raise ValueError(f"every segment needs {length} frames; segment {i} has {len(seg)}")
        for frame in seg:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
            if frame.shape != seg[0].shape:
                raise ValueError(f"frames within a segment must share one size; got {seg[0].shape} and {frame.shape}")
    positions = [CENTRE] * len(segments) if positions is None else list(positions)
    if len(positions) != len(segments):
        raise ValueError(f"expected one crop position per segment ({len(segments)}), got {len(positions)}")
    return positions


class SegmentTransform:
    """The three steps with torch on the CPU: antialiased bilinear resize on uint8, crop, normalise."""

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        std = torch.tensor(spec.std)
        self._scale = 1.0 / (255.0 * std)  # x / 255 -> (x - mean) / std == x * scale + shift
        self._shift = -torch.tensor(spec.mean) / std

    def _segment(self, frames: Sequence[np.ndarray], position: float) -> torch.Tensor:
        """L frames -> ``(L, S, S, 3)`` float32, FHWC like DALI."""
        stacked = resize_short_side(torch.from_numpy(np.stack(frames)), self.spec.resize_short)  # (L, rh, rw, 3)
        rh, rw = stacked.shape[1:3]
        s = self.spec.input_size
        px, py = crop_positions(rh, rw, position)
        x0, y0 = crop_origin(rw, s, px), crop_origin(rh, s, py)
        crop = stacked[:, y0:y0 + s, x0:x0 + s].contiguous()  # uint8 copy first: 4x cheaper than a strided float cast
        return torch.addcmul(self._shift, crop.float(), self._scale)  # (x / 255 - mean) / std

    def segments(self, segments: Sequence[Sequence[np.ndarray]],
                 positions: Sequence[float] | None = None) -> torch.Tensor:
        """M segments of L frames (see :func:`check_segments`) -> float32 ``(M, L, 3, S, S)``;
        ``positions[i]`` places segment i's crop along the long side (default: centre)."""
        positions = check_segments(segments, positions)
        parts = [self._segment(seg, p) for seg, p in zip(segments, positions)]
        fhwc = parts[0] if len(parts) == 1 else torch.cat(parts)  # M x (L, S, S, 3) -> (M*L, S, S, 3)
        return to_model_layout(fhwc, len(segments), len(segments[0]))
