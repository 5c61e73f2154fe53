"""Preprocessing backends: raw uint8 RGB frames -> the model's normalised float32 layout.

Every backend applies TDN's test transform (:mod:`tdn.transforms`: resize the short side, crop,
normalise). Backends, chosen by one argument (:func:`create_preprocessor`):

- ``"cpu"``: torch (:class:`tdn.transforms.SegmentTransform`) - this module.
- ``"dali"``: an NVIDIA DALI pipeline (:mod:`pipelines.dali_backend`), GPU operators when
  CUDA is present, DALI's CPU operators otherwise.
- ``"auto"``: ``"dali"`` on a CUDA machine, ``"cpu"`` otherwise.

Both backends produce frames in DALI's ``FHWC`` order and turn them into the model's layout
with :func:`tdn.transforms.to_model_layout`. They agree to within one uint8 level before
normalisation (:func:`tolerance` after it; see docs/streaming.md).
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch

from tdn.registry import BACKENDS
from tdn.transforms import PreprocessSpec, SegmentTransform

# The two backends' resizers round to uint8 independently: they may differ by one level, which
# after normalisation is 1 / (255 * std). With ImageNet's smallest std (0.225) that is 0.0175.
UINT8_LEVELS_TOLERANCE = 1
BORDER_LEVELS_TOLERANCE = 8  # the resized frame's outermost row/column (different border filters)


def tolerance(spec: PreprocessSpec) -> float:
    """Largest difference between two backends' normalised outputs away from the border."""
    return UINT8_LEVELS_TOLERANCE / (255.0 * min(spec.std)) + 1e-5


def border_tolerance(spec: PreprocessSpec) -> float:
    """The same on the resized frame's outermost row/column."""
    return BORDER_LEVELS_TOLERANCE / (255.0 * min(spec.std)) + 1e-5


class Preprocessor(Protocol):
    """What every backend offers."""

    name: str
    spec: PreprocessSpec
    device: torch.device

    def segments(self, segments: Sequence[Sequence[np.ndarray]],
                 positions: Sequence[float] | None = None) -> torch.Tensor:
        """M segments of L uint8 ``(H, W, 3)`` RGB frames (one size within a segment) ->
        float32 ``(M, L, 3, S, S)`` on :attr:`device`; ``positions[i]`` places segment i's crop
        along the long side (default: centre)."""
        ...

    def can_decode(self, path: str) -> bool:
        """Whether :meth:`decode_segments` can decode this video file here."""
        ...

    def decode_segments(self, path: str, indices: Sequence[int], frame_size: tuple[int, int],
                        positions: Sequence[float]) -> torch.Tensor | None:
        """Decode frames ``indices`` of a video file with the backend's own decoder and
        preprocess them once per crop position -> ``(V, F, 3, S, S)``; ``None`` when the
        backend has no decoder for the file (the caller then decodes with OpenCV)."""
        ...


class CpuPreprocessor(SegmentTransform):
    """The ``"cpu"`` backend: :class:`tdn.transforms.SegmentTransform`; it has no decoder of its own."""

    name = "cpu"
    device = torch.device("cpu")

    def can_decode(self, path: str) -> bool:
        """The CPU backend has no decoder of its own: clips are decoded with OpenCV."""
        return False

    def decode_segments(self, path: str, indices: Sequence[int], frame_size: tuple[int, int],
                        positions: Sequence[float]) -> None:
        return None


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"dali"`` when CUDA is available, else ``"cpu"``; others checked and returned."""
    if backend not in BACKENDS:
        raise ValueError(f"preprocessing backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto":
        return "dali" if torch.cuda.is_available() else "cpu"
    return backend


def create_preprocessor(spec: PreprocessSpec, backend: str = "auto", *, max_segments: int = 64) -> Preprocessor:
    """The preprocessing backend by name; ``max_segments`` bounds one DALI run (larger calls are split)."""
    backend = resolve_backend(backend)
    if backend == "cpu":
        return CpuPreprocessor(spec)
    from pipelines.dali_backend import DaliPreprocessor  # imported only when chosen

    return DaliPreprocessor(spec, max_segments=max_segments)
