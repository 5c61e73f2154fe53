"""``load_model``: the one way to get a ready-to-run TDN."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from tdn.checkpoint import build_from_file
from tdn.inference import prepare_for_inference
from tdn.labels import load_labels
from tdn.model import create_model
from tdn.registry import AUTO, CPU_PRECISIONS, DEVICES, PRECISIONS

log = logging.getLogger(__name__)
DEMO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "demo" / "tdn_r18_synth.pt"


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda if present, else cpu; "cuda" without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu'")
    if dev.type not in DEVICES:
        raise ValueError(f"device must be cpu, cuda or auto, got {device!r}")
    return dev


def resolve_precision(precision: str, device: torch.device, engine: str = AUTO) -> str:
    """"auto" -> fp16 on CUDA, bf16 on CPU (or the engine's preferred precision there, when an engine
    is named); fp16 on CPU is refused (slow and lossy there)."""
    if precision == "auto":
        from tdn.engines import SUPPORTED

        if engine != AUTO and device.type in SUPPORTED.get(engine, {}):
            return SUPPORTED[engine][device.type][0]
        return "fp16" if device.type == "cuda" else "bf16"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} or auto, got {precision!r}")
    if precision not in CPU_PRECISIONS and device.type != "cuda":
        raise ValueError(f"precision {precision!r} needs a CUDA device; on CPU use 'bf16' or 'fp32'")
    return precision


def load_model(weights: str | Path | None = None, *, arch: str = "resnet50", num_segments: int = 8,
               num_classes: int = 400, variant: str = "tdn", device: str = "cpu", precision: str = "fp32",
               labels: str | Path | list[str] | None = None, rewrite: bool = True, engine: str = "torch"):
    """An eval-mode TDN ready to run.

    Input float32 ``(N, T, 5, 3, H, W)`` normalised RGB, output float32 logits ``(N, classes)``.
    ``weights``: None (random initialisation), this project's file, or an official TDN
    checkpoint; from a file, arch, block counts and classes come from the file (and T too,
    for this project's files; official files do not store it, so ``num_segments`` is used).
    ``labels``: a label file or list overriding the names stored with the weights.
    ``model.meta`` carries labels and preprocessing (:class:`tdn.meta.ModelMeta`).
    ``rewrite``: apply the inference rewrites (:mod:`tdn.inference`); False keeps the model as defined.
    ``engine``: ``torch`` (a :class:`~tdn.model.TDN`), ``onnxruntime``, ``openvino`` or ``tensorrt`` (a
    :class:`tdn.engines.EngineModel` with the same interface, run from the exact ONNX export), or
    ``auto``: the fastest measured for the device (:func:`tdn.engines.choose_engine`). ``model.engine``
    names the engine that runs, ``model.engine_choice`` why.
    """
    from tdn.engines import EngineModel, check_engine, choose_engine

    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, engine)
    choice = engine
    if engine == AUTO:
        engine, choice = choose_engine(dev, prec)
    check_engine(engine, dev, prec)
    if engine != "torch" and not rewrite:
        raise ValueError(f"rewrite=False keeps the model as defined, in torch; engine {engine!r} needs rewrite=True")
    if weights is None:
        model = create_model(arch, num_segments=num_segments, num_classes=num_classes, variant=variant)
    else:
        model = build_from_file(weights, num_segments=num_segments)
    if labels is not None:
        names = list(labels) if isinstance(labels, (list, tuple)) else load_labels(labels)
        if len(names) != model.cfg.num_classes:
            given = "the labels given" if isinstance(labels, (list, tuple)) else f"label file {labels}"
            raise ValueError(f"{given} has {len(names)} names but the model ({weights or 'random init'}) "
                             f"has {model.cfg.num_classes} classes")
        model.meta.labels = names
    if engine == "torch":
        model = prepare_for_inference(model, device=dev, precision=prec, rewrite=rewrite)
    else:  # the engine takes the float32 graph and runs it in its precision
        model = EngineModel(prepare_for_inference(model, device=torch.device("cpu"), precision="fp32"), engine,
                            device=dev, precision=prec)
    model.engine_choice = choice
    log.info("model runs on %s with engine %s in %s (%s)", dev, engine, prec, choice)
    return model
