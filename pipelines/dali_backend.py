"""The ``"dali"`` preprocessing backend: NVIDIA DALI pipelines, each built once.

Live frames enter through ``fn.external_source`` (DALI has no live camera input), one sample
per segment (``(L, H, W, 3)``, layout ``FHWC``); video files are decoded by DALI's own decoder
(``fn.decoders.video``: NVDEC through the ``mixed`` backend on a GPU; on the CPU, DALI 2.4
decodes VP8, VP9 and MJPEG only - other codecs return ``None`` from :meth:`decode_segments`
and the caller decodes with OpenCV). Both graphs share :func:`_resize_crop_normalise`, which
mirrors :class:`tdn.transforms.SegmentTransform`: bilinear with antialiasing, the exact
output scale (``subpixel_scale=False``), the same size rounding and crop origin.

``device="gpu"`` runs the operators on CUDA device 0 (outputs are CUDA tensors);
``device="cpu"`` uses DALI's CPU operators (``device_id=None``); ``None`` picks GPU when CUDA
is available. A DALI pipeline is not thread-safe: every run holds a lock.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.plugin.pytorch import feed_ndarray

from tdn.transforms import PreprocessSpec, check_segments, crop_positions, to_model_layout
from tdn.video import fourcc

CPU_DECODABLE = frozenset({"VP80", "VP90", "VP09", "MJPG"})  # FourCCs DALI 2.4 decodes on the CPU
THREE_CROP_SAMPLES = 3


def _resize_crop_normalise(frames, crop_x, crop_y, spec: PreprocessSpec):
    """DALI graph: uint8 ``FHWC`` -> float32 ``FHWC``, resized, cropped and normalised."""
    frames = fn.resize(frames, resize_shorter=spec.resize_short, interp_type=types.INTERP_LINEAR,
                       antialias=True, subpixel_scale=False)
    return fn.crop_mirror_normalize(
        frames, crop=(spec.input_size, spec.input_size), crop_pos_x=crop_x, crop_pos_y=crop_y,
        mean=[255.0 * m for m in spec.mean], std=[255.0 * s for s in spec.std],
        dtype=types.FLOAT, output_layout="FHWC",
    )


class DaliPreprocessor:
    """Preprocessing with DALI; see the module docstring. ``max_segments`` bounds one live run."""

    name = "dali"

    def __init__(self, spec: PreprocessSpec, *, device: str | None = None, max_segments: int = 64,
                 num_threads: int = 2):
        if device is None:
            device = "gpu" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "gpu"):
            raise ValueError(f"DALI device must be 'cpu' or 'gpu', got {device!r}")
        if device == "gpu" and not torch.cuda.is_available():
            raise ValueError("DALI device 'gpu' needs CUDA, which this machine does not have")
        self.spec = spec
        self.on_gpu = device == "gpu"
        self.device = torch.device("cuda", 0) if self.on_gpu else torch.device("cpu")
        self.max_segments = max_segments
        self._num_threads = num_threads
        self._lock = threading.Lock()
        self._live = self._build_live()
        self._files = None  # built on the first decoded file

    # -- pipelines ---------------------------------------------------------------------
    def _pipeline_args(self, batch_size: int) -> dict:
        return dict(batch_size=batch_size, num_threads=self._num_threads, device_id=0 if self.on_gpu else None,
                    exec_dynamic=True, prefetch_queue_depth=1)

    def _build_live(self):
        spec, on_gpu = self.spec, self.on_gpu

        @pipeline_def(**self._pipeline_args(self.max_segments))
        def live():
            frames = fn.external_source(name="frames", layout="FHWC", dtype=types.UINT8)
            crop_x = fn.external_source(name="crop_x", dtype=types.FLOAT)
            crop_y = fn.external_source(name="crop_y", dtype=types.FLOAT)
            return _resize_crop_normalise(frames.gpu() if on_gpu else frames, crop_x, crop_y, spec)

        pipe = live()
        pipe.build()
        return pipe

    def _build_files(self):
        spec, on_gpu = self.spec, self.on_gpu

        @pipeline_def(**self._pipeline_args(THREE_CROP_SAMPLES))
        def files():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8)
            indices = fn.external_source(name="indices", dtype=types.INT32)
            crop_x = fn.external_source(name="crop_x", dtype=types.FLOAT)
            crop_y = fn.external_source(name="crop_y", dtype=types.FLOAT)
            frames = fn.decoders.video(encoded, frames=indices, device="mixed" if on_gpu else "cpu")
            return _resize_crop_normalise(frames, crop_x, crop_y, spec)

        pipe = files()
        pipe.build()
        return pipe

    def _run(self, pipe, inputs: dict[str, list]) -> torch.Tensor:
        """Feed, run, and copy the one output into a torch tensor ``(B, F, S, S, 3)`` (B samples)."""
        for name, data in inputs.items():
            pipe.feed_input(name, data)
        (output,) = pipe.run()
        dense = output.as_tensor()
        result = torch.empty(dense.shape(), dtype=torch.float32, device=self.device)
        feed_ndarray(dense, result, cuda_stream=torch.cuda.current_stream() if self.on_gpu else None)
        return result

    # -- public --------------------------------------------------------------------------
    def segments(self, segments: Sequence[Sequence[np.ndarray]],
                 positions: Sequence[float] | None = None) -> torch.Tensor:
        positions = check_segments(segments, positions)
        outputs = []
        with self._lock:
            for start in range(0, len(segments), self.max_segments):
                chunk = segments[start:start + self.max_segments]
                xy = [crop_positions(*seg[0].shape[:2], p) for seg, p in zip(chunk, positions[start:])]
                outputs.append(self._run(self._live, {
                    "frames": [np.ascontiguousarray(np.stack(seg)) for seg in chunk],
                    "crop_x": [np.float32(x) for x, _ in xy],
                    "crop_y": [np.float32(y) for _, y in xy],
                }))
        fhwc = torch.cat(outputs).flatten(0, 1)  # (M, L, S, S, 3) -> (M*L, S, S, 3)
        return to_model_layout(fhwc, len(segments), len(segments[0]))

    def can_decode(self, path: str) -> bool:
        """Whether DALI's decoder handles this file here (any NVDEC codec on GPU; VP8/VP9/MJPEG on CPU)."""
        return self.on_gpu or fourcc(path) in CPU_DECODABLE

    def decode_segments(self, path: str, indices: Sequence[int], frame_size: tuple[int, int],
                        positions: Sequence[float]) -> torch.Tensor | None:
        """Frames ``indices`` of the video at ``path`` (``(H, W)`` frames), decoded by DALI and
        preprocessed once per crop position -> ``(len(positions), F, 3, S, S)``; ``None`` when
        DALI cannot decode this codec here. Indices must lie inside the video (DALI pads
        frames past the end with black)."""
        if not self.can_decode(path) or not 1 <= len(positions) <= THREE_CROP_SAMPLES:
            return None
        encoded = np.fromfile(path, dtype=np.uint8)
        xy = [crop_positions(*frame_size, p) for p in positions]
        with self._lock:
            if self._files is None:
                self._files = self._build_files()
            try:
                out = self._run(self._files, {
                    "encoded": [encoded] * len(positions),
                    "indices": [np.asarray(indices, dtype=np.int32)] * len(positions),
                    "crop_x": [np.float32(x) for x, _ in xy],
                    "crop_y": [np.float32(y) for _, y in xy],
                })
            except RuntimeError as exc:
                self._files = None  # a failed DALI pipeline cannot run again
                raise ValueError(f"DALI could not decode {path}: {str(exc).splitlines()[-1]}") from exc
        views, frames = out.shape[:2]
        # (V, F, S, S, 3) -> (V*F, S, S, 3) -> (V, F, 3, S, S)
        return to_model_layout(out.flatten(0, 1), views, frames)
