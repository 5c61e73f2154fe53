"""Export to TorchScript (``tdn export``): a model file any libtorch/PyTorch can run without this package.

The exported module is the inference model as :func:`tdn.load_model` prepares it (eval mode,
BatchNorm folded, fixed precision), traced on a window of the model's own shape: input float32
``(N, T, 5, 3, S, S)`` normalised RGB, output float32 logits ``(N, K)``; N may vary, T and S may
not. Labels and preprocessing travel in the archive as ``meta.json``
(``torch.jit.load(path, _extra_files={"meta.json": ""})``). Every export is checked against
the eager model on random windows and the largest logit difference is reported.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from tdn.model import TDN

META_FILE = "meta.json"


def example_input(model: TDN, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A random window of the model's shape, float32 ``(batch, T, L, 3, S, S)``."""
    size = model.meta.input_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.cfg.num_segments, model.cfg.segment_length, 3, size, size, generator=generator)


def export_torchscript(model: TDN, path: str | Path) -> Path:
    """Trace eval-mode ``model`` and write it, with its meta, to ``path``.

    The archive is written under a hidden ``.NAME.partial`` name and renamed when complete,
    so ``path`` never holds a partial file.
    """
    if model.training:
        raise ValueError("export needs an eval-mode model (tdn.load_model returns one)")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"export output {path} is a directory; give a file name such as {path / 'model.ts'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The model's shape checks become constants of the trace, as intended (T and S are fixed);
        # TorchScript's deprecation notice is not actionable here.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example_input(model, batch=2), check_trace=False)
        meta = {**model.meta.to_dict(), "num_segments": model.cfg.num_segments, "segment_length": model.cfg.segment_length,
                "arch": model.cfg.arch, "variant": model.cfg.variant, "precision": model.precision}
        try:
            torch.jit.save(traced, str(partial), _extra_files={META_FILE: json.dumps(meta, allow_nan=False)})
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """The exported module and its meta."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TorchScript file not found: {path}")
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a TorchScript archive: {exc}") from exc
    return module, json.loads(extra[META_FILE] or "{}")


@torch.no_grad()
def max_logit_difference(model: TDN, exported: torch.jit.ScriptModule, *, batches: int = 3, batch: int = 2) -> float:
    """Largest |eager - exported| logit over ``batches`` random windows."""
    worst = 0.0
    for seed in range(batches):
        x = example_input(model, batch=batch, seed=100 + seed)
        worst = max(worst, float((model(x) - exported(x)).abs().max()))
    return worst

