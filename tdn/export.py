"""Export (``tdn export``): TorchScript or ONNX files any runtime can run without this package.

The exported graph is the inference model as :func:`tdn.load_model` prepares it (eval mode,
BatchNorm folded), traced on a window of the model's own shape: input float32
``(N, T, 5, 3, S, S)`` normalised RGB, output float32 logits ``(N, K)``; N may vary, T and S may
not. Every export is checked against the eager model on random windows and the largest logit
difference is reported.

* TorchScript (fixed precision): labels and preprocessing travel in the archive as ``meta.json``
  (``torch.jit.load(path, _extra_files={"meta.json": ""})``).
* ONNX (float32; the runtime chooses its precision): one of three graphs (:data:`ONNX_PARTS`),
  the whole model or one of the two halves the streaming engine runs apart (the per-segment
  features it caches, and the temporal part). Inputs and outputs are named, the batch axis is
  dynamic and the meta is stored as JSON under the ``tdn`` key of the file's ``metadata_props``
  (:func:`onnx_meta`).
"""
from __future__ import annotations

import io
import json
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

from tdn.files import write_atomically
from tdn.model import TDN

META_FILE = "meta.json"
ONNX_META_KEY = "tdn"
ONNX_OPSET = 17
# torch.onnx.export keeps its state in process-wide globals: two exports at once (the app compiling one
# model while the model panel loads another) fail, so they take turns. An eager forward meanwhile sees
# torch.onnx.is_in_onnx_export() and takes the export forms of tdn.model: the same values, slower.
_EXPORT_LOCK = threading.Lock()
# Tracing makes the model's shape checks constants of the graph, as intended (T and S are fixed per export),
# and the tracer warns at each. Ignored for this package's modules process-wide: the catch_warnings() around
# an export is not enough where another thread (the app's) restores the warning filters while it runs.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"tdn\.")


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
    path = _output_path(path, "model.ts")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The model's shape checks become constants of the trace, as intended (T and S are fixed);
        # TorchScript's deprecation notice is not actionable here.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example_input(model, batch=2), check_trace=False)
        meta = {**_model_meta(model), "precision": model.precision}
        write_atomically(path, lambda partial: torch.jit.save(
            traced, str(partial), _extra_files={META_FILE: json.dumps(meta, allow_nan=False)}))
    return path


def _model_meta(model: TDN) -> dict:
    """What a file needs to describe itself: labels, preprocessing, T, L, arch, variant."""
    return {**model.meta.to_dict(), "num_segments": model.cfg.num_segments,
            "segment_length": model.cfg.segment_length, "arch": model.cfg.arch, "variant": model.cfg.variant,
            "num_classes": model.cfg.num_classes}


def _output_path(path: str | Path, example: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"export output {path} is a directory; give a file name such as {path / example}")
    path.parent.mkdir(parents=True, exist_ok=True)
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



# -- ONNX ------------------------------------------------------------------------------------
# part -> (input names, output names); "segments" has "response" only with S-TDM
ONNX_PARTS = {
    "model": (("window",), ("logits",)),
    "segments": (("segments",), ("features", "response")),
    "temporal": (("features",), ("logits",)),
}
LIVE_PARTS = ("segments", "temporal")  # the parts streams run, in the order they run
CLIP_PARTS = ("model",)  # the part clip views run


class _Segments(nn.Module):
    """:meth:`TDN.forward_segments_with_response` as a module of its own, for export."""

    def __init__(self, model: TDN):
        super().__init__()
        self.model = model

    def forward(self, segments: torch.Tensor):
        features, response = self.model.forward_segments_with_response(segments)
        return features if response is None else (features, response)


class _Temporal(nn.Module):
    """:meth:`TDN.forward_temporal` as a module of its own, for export."""

    def __init__(self, model: TDN):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_temporal(features)


def _part_module(model: TDN, part: str) -> nn.Module:
    """``part`` of eval-mode ``model`` as a module; eval mode too (the exporter restores the module's mode,
    recursively, after tracing: a wrapper in train mode would leave ``model`` in train mode)."""
    return {"model": model, "segments": _Segments(model), "temporal": _Temporal(model)}[part].eval()


def onnx_example(model: TDN, part: str, batch: int = 2) -> torch.Tensor:
    """A random float32 input of ``part`` at the model's shape, ``batch`` windows' worth."""
    window = example_input(model, batch=batch)
    if part == "model":
        return window  # (N, T, L, 3, S, S)
    segments = window.flatten(0, 1)  # (N, T, L, 3, S, S) -> (N*T, L, 3, S, S)
    if part == "segments":
        return segments
    with torch.no_grad():
        return model.forward_segments(segments).unflatten(0, window.shape[:2])  # -> (N, T, C, S/4, S/4)


def onnx_bytes(model: TDN, part: str = "model") -> bytes:
    """The ONNX graph of ``part`` (:data:`ONNX_PARTS`) of float32 eval-mode ``model``, meta included."""
    import onnx

    if part not in ONNX_PARTS:
        raise ValueError(f"unknown ONNX part {part!r}; expected one of {', '.join(ONNX_PARTS)}")
    if model.training:
        raise ValueError("export needs an eval-mode model (tdn.load_model returns one)")
    if model.precision != "fp32":
        raise ValueError(f"ONNX export needs a float32 model (the runtime sets the precision), got {model.precision}")
    module = _part_module(model, part)
    inputs, outputs = ONNX_PARTS[part]
    if part == "segments" and not model.cfg.has_stdm:
        outputs = outputs[:1]
    buffer = io.BytesIO()
    with _EXPORT_LOCK, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks become constants, as intended
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # the exporter's notice, not a fault
        torch.onnx.export(module, (onnx_example(model, part),), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes={name: {0: "batch"} for name in (*inputs, *outputs)})
    proto = onnx.load_from_string(buffer.getvalue())
    meta = {**_model_meta(model), "part": part, "inputs": list(inputs), "outputs": list(outputs)}
    onnx.helper.set_model_props(proto, {ONNX_META_KEY: json.dumps(meta, allow_nan=False)})
    return proto.SerializeToString()


def export_onnx(model: TDN, path: str | Path, part: str = "model") -> Path:
    """Write :func:`onnx_bytes` to ``path`` (atomically, as :func:`export_torchscript`)."""
    path = _output_path(path, "model.onnx")
    data = onnx_bytes(model, part)
    write_atomically(path, lambda partial: partial.write_bytes(data))
    return path


def onnx_meta(path_or_bytes: str | Path | bytes) -> dict:
    """The meta an ONNX file of :func:`export_onnx` carries (``part``, ``inputs``, ``outputs``, labels, ...)."""
    import onnx

    if isinstance(path_or_bytes, bytes):
        proto = onnx.load_from_string(path_or_bytes)
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
            raise ValueError(f"{path} is not an ONNX file: {exc}") from exc
    props = {p.key: p.value for p in proto.metadata_props}
    if ONNX_META_KEY not in props:
        raise ValueError(f"ONNX model has no '{ONNX_META_KEY}' metadata (not exported by tdn export)")
    return json.loads(props[ONNX_META_KEY])


@torch.no_grad()
def onnx_max_difference(model: TDN, path: str | Path, *, batch: int = 3) -> float:
    """Largest |eager - ONNX Runtime| over the outputs of the exported ``part`` of ``model`` on a random
    input of ``batch`` windows (a batch size the export did not trace). Needs onnxruntime."""
    import onnxruntime

    meta = onnx_meta(path)
    part = meta["part"]
    example = onnx_example(model, part, batch=batch)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {meta["inputs"][0]: example.numpy()})
    module = _part_module(model, part)
    expected = module(example)
    expected = expected if isinstance(expected, tuple) else (expected,)
    return max(float((torch.from_numpy(o) - e.float()).abs().max()) for o, e in zip(outputs, expected))
