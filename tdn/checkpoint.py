"""Weights files: this project's own, official TDN releases, torchvision ImageNet ResNets.

Every file is read with ``torch.load(..., weights_only=True)``; a missing, truncated, foreign
or unsafe file raises :class:`CheckpointError` (a ``ValueError``) or ``FileNotFoundError``
naming the file and what was wrong. Loading is strict: every key of the file is used or
deliberately skipped, every parameter of the model is filled, every tensor is finite, and
the stored config and meta (class names, input size, mean/std) are checked before use.

This project's format::

    {"format": "tdn-live", "version": 1, "config": TDNConfig fields, "meta": ModelMeta fields,
     "state_dict": {...}}
"""
from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from tdn.config import ModelConfig, Range, TrainConfig
from tdn.files import write_atomically
from tdn.meta import ModelMeta
from tdn.model import ARCHS, TDN, TDNConfig

FORMAT = "tdn-live"
VERSION = 1


class CheckpointError(ValueError):
    """A weights file could not be used; the message names the file and the reason."""


# A torch.load error that means the file is a real pickle needing globals weights_only refuses.
_UNSAFE = re.compile(r"GLOBAL [A-Za-z_][\w.]* was not an allowed global|whose module [A-Za-z_][\w.]* is blocked")


def read_file(path: str | Path) -> object:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong with the file.

    Bytes that are not a PyTorch checkpoint make ``torch.load`` fail in many ways (bad zip,
    bad pickle opcodes, ``IndexError``, ``KeyError``, ...): every one becomes a
    :class:`CheckpointError`; a real pickle that needs unsafe globals gets its own message.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a weights file")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    with open(path, "rb") as f:  # unreadable (permissions): the OSError names the file
        if not f.read(1):
            raise CheckpointError(f"weights file {path} is empty")
    try:
        with warnings.catch_warnings():  # garbage bytes read as a pickle "protocol" make torch warn first
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # any failure to parse these bytes is the file's fault
        unsafe = _UNSAFE.search(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
        if unsafe:
            raise CheckpointError(
                f"refused to load {path}: it holds Python objects other than tensors and plain containers, "
                f"which could run code (loaded with weights_only=True): {unsafe[0]}") from exc
        detail = str(exc).rpartition("WeightsUnpickler error:")[2]  # torch's own advice does not apply
        lines = [line.strip() for line in detail.splitlines() if line.strip()]
        raise CheckpointError(f"{path} is not a PyTorch checkpoint, or it is truncated or corrupt "
                              f"({type(exc).__name__}: {lines[0][:200] if lines else 'no detail'})") from exc


def _check_tensors(path: Path, state_dict: object) -> None:
    """Every value is a tensor and every floating tensor finite; errors name the offending keys."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{path}: the state dict is a {type(state_dict).__name__}, not a dict of tensors")
    not_tensors = [str(k) for k, v in state_dict.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if not_tensors:
        raise CheckpointError(f"{path}: {len(not_tensors)} state dict entries are not named tensors: "
                              f"{', '.join(not_tensors[:6])}")
    bad = [str(k) for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} tensors hold NaN or infinite values: {', '.join(bad[:6])}"
                              f"{' ...' if len(bad) > 6 else ''}")


def _check_number(path: Path, name: str, value: Any, allowed: Range, *, integer: bool = True) -> Any:
    """``value`` if it is a (finite) number in ``allowed``; else a CheckpointError naming the field."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value not in allowed:  # NaN is in no range
        raise CheckpointError(f"{path}: {name} must be {'an integer' if integer else 'a number'} with "
                              f"{allowed.describe(name)}, got {value!r}")
    return value


def _setting_range(name: str) -> Range:
    return next(f.metadata["range"] for f in fields(ModelConfig) + fields(TrainConfig) if f.name == name)


# -- official TDN ----------------------------------------------------------------------------
# Official L-TDM ("mse") names -> this project's.
_OFFICIAL_LTDM = {
    "conv1": "reduce", "bn1": "reduce_bn", "conv2": "conv_next",
    "conv3_smallscale4": "scale1_conv", "bn3_smallscale4": "scale1_bn",
    "conv3_smallscale2": "scale2_conv", "bn3_smallscale2": "scale2_bn",
    "conv3": "expand", "bn3": "expand_bn",
}
# Kept in every official file but unused by its forward pass (an un-inflated copy of conv1).
OFFICIAL_SKIPPED_PREFIXES = ("conv1_temp.",)


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        out[key.removeprefix("base_model.")] = value
    return out


def remap_official(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official TDN keys -> this project's keys. Returns ``(state_dict, skipped_keys)``.

    Raises :class:`CheckpointError` listing keys that have no place in this model.
    """
    out, skipped, unknown = {}, [], []
    for key, value in _strip_prefix(state_dict).items():
        if key.startswith(OFFICIAL_SKIPPED_PREFIXES):
            skipped.append(key)
            continue
        new = _map_official_key(key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise CheckpointError(f"{len(unknown)} official keys have no place in the TDN model: {', '.join(unknown[:8])}")
    return out, skipped


def _map_official_key(key: str) -> str | None:
    if key.startswith("new_fc."):
        return "fc." + key[len("new_fc."):]
    if re.match(r"(conv1|bn1)\.", key):
        return key
    if m := re.match(r"conv1_5\.([01])\.(.+)", key):
        return ("stdm.conv." if m[1] == "0" else "stdm.bn.") + m[2]
    if m := re.match(r"resnext_layer1\.(.+)", key):
        return "stdm.layer1." + m[1]
    if m := re.match(r"layer([1-4])_bak\.(\d+)\.(.+)", key):
        stage, block, rest = m.groups()
        prefix = f"layer{stage}.{block}."
        if m2 := re.match(r"mse\.([a-z0-9_]+)\.(.+)", rest):
            name = _OFFICIAL_LTDM.get(m2[1])
            return None if name is None else prefix + f"temporal.ltdm.{name}.{m2[2]}"
        if rest == "shift.conv.weight":
            return prefix + "temporal.tconv.weight"
        return prefix + rest
    return None


def official_config(state_dict: Mapping[str, torch.Tensor], num_segments: int) -> TDNConfig:
    """Block type, block counts and classes from an official state dict (T is not stored there)."""
    keys = _strip_prefix(state_dict)
    layers = []
    for stage in range(1, 5):
        blocks = {int(m[1]) for k in keys if (m := re.match(rf"layer{stage}_bak\.(\d+)\.", k))}
        if not blocks:
            raise CheckpointError(f"official checkpoint has no layer{stage}_bak blocks")
        layers.append(max(blocks) + 1)
    bottleneck = "layer1_bak.0.conv3.weight" in keys
    arch = next((name for name, (block, counts) in ARCHS.items()
                 if block == ("bottleneck" if bottleneck else "basic") and list(counts) == layers),
                "resnet50" if bottleneck else "resnet18")
    fc = keys.get("new_fc.weight")
    if not isinstance(fc, torch.Tensor) or fc.dim() != 2:
        raise CheckpointError("official checkpoint has no 2-D new_fc.weight: cannot tell the number of classes")
    return TDNConfig(arch=arch, layers=tuple(layers), num_segments=num_segments, num_classes=fc.shape[0], variant="tdn")


# -- torchvision ImageNet ResNets ------------------------------------------------------------
def inflate_difference_stem(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB conv1 ``(64, 3, k, k)`` -> difference-stem weight ``(64, in_channels, k, k)``.

    Every input channel gets the RGB kernel averaged over its three colours, as the
    official release initialises its 12-channel difference stem.
    """
    mean = rgb_weight.mean(dim=1, keepdim=True)  # (64, 3, k, k) -> (64, 1, k, k)
    return mean.expand(-1, in_channels, -1, -1).clone()  # (64, 1, k, k) -> (64, in_channels, k, k)


def load_imagenet_init(model: TDN, path: str | Path) -> list[str]:
    """Initialise both streams of ``model`` from a torchvision-format ImageNet ResNet file.

    The RGB stream takes every backbone key by name; the S-TDM takes a copy of stage 1 and
    BN1, and its 12-channel stem is inflated from conv1. ``fc`` is not used. Returns the
    model keys left at their initialisation (conv biases, temporal modules, classifier).
    """
    data = read_file(path)
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or "conv1.weight" not in data or "layer1.0.conv1.weight" not in data:
        raise CheckpointError(f"{path} is not a torchvision-format ResNet state dict (no conv1/layer1 keys)")
    _check_tensors(Path(path), data)
    source = {k: v for k, v in data.items() if not k.startswith("fc.")}
    target = model.state_dict()
    mapped = dict(source)
    if model.stdm is not None:
        mapped["stdm.conv.weight"] = inflate_difference_stem(source["conv1.weight"], model.stdm.conv.in_channels)
        for k, v in source.items():
            if k.startswith("bn1."):
                mapped["stdm.bn." + k[4:]] = v
            elif k.startswith("layer1."):
                mapped["stdm." + k] = v
    unexpected = sorted(k for k in mapped if k not in target)
    if unexpected:
        raise CheckpointError(f"{path}: keys with no place in a TDN-{model.cfg.arch}: {', '.join(unexpected[:8])}"
                              " (is it the same ResNet depth?)")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in mapped.items() if v.shape != target[k].shape]
    if wrong:
        raise CheckpointError(f"{path}: shapes do not match TDN-{model.cfg.arch}: {'; '.join(wrong[:5])}")
    model.load_state_dict({**target, **mapped}, strict=True)
    return sorted(k for k in target if k not in mapped)


# -- this project's files --------------------------------------------------------------------
def save_model(path: str | Path, model: TDN, meta: ModelMeta | None = None, *, half: bool = False) -> Path:
    """Write ``model`` (as trained: not prepared for inference) and ``meta`` (default: the model's own)
    in this project's format.

    ``half`` stores floating tensors as float16 (half the size; load casts back to float32).
    """
    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        raise ValueError("refusing to save a model prepared for inference (BatchNorm folded); save the training model")
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    meta = meta if meta is not None else model.meta
    checkpoint = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(), "meta": meta.to_dict(),
                  "state_dict": state}
    return write_atomically(path, lambda partial: torch.save(checkpoint, partial))  # an interrupted save keeps the old file


_LAYERS = Range(1, 64)  # blocks per stage (ResNet-152 has 36)
_SEGMENT_LENGTH = Range(2, 16)
_RENAMED_CONFIG_KEYS = {"neighbours": "segment_length"}  # files written before the rename
_DIVISORS = Range(1, 1024)  # ltdm_reduction, shift_fold_div


def _config_from_dict(path: Path, d: object) -> TDNConfig:
    """A TDNConfig from a file's stored config (or an official file's derived one), checked before building."""
    if not isinstance(d, Mapping):
        raise CheckpointError(f"{path}: the stored model config is a {type(d).__name__}, not a dict")
    d = {_RENAMED_CONFIG_KEYS.get(k, k): v for k, v in d.items()}
    known = {f.name for f in fields(TDNConfig)}
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise CheckpointError(f"{path}: unknown model config fields in file: {', '.join(unknown)}")
    for name, allowed in (("num_segments", _setting_range("num_segments")), ("num_classes", _setting_range("num_classes")),
                          ("segment_length", _SEGMENT_LENGTH), ("ltdm_reduction", _DIVISORS), ("shift_fold_div", _DIVISORS)):
        if name in d:
            _check_number(path, name, d[name], allowed)
    if d.get("layers") is not None:
        layers = d["layers"]
        if not isinstance(layers, (list, tuple)) or len(layers) != 4:
            raise CheckpointError(f"{path}: stored layers must be 4 block counts, got {layers!r}")
        d["layers"] = tuple(_check_number(path, "layers", n, _LAYERS) for n in layers)
    if isinstance(d.get("fusion"), list):
        d["fusion"] = tuple(d["fusion"])
    try:
        return TDNConfig(**d)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config in file: {exc}") from exc


def _meta_from_dict(path: Path, d: object, num_classes: int) -> ModelMeta:
    """The stored meta, checked: class names match the classes, sizes in range, std > 0."""
    if not isinstance(d, Mapping):
        raise CheckpointError(f"{path}: the stored meta is a {type(d).__name__}, not a dict")
    known = {f.name for f in fields(ModelMeta)} - {"source"}
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise CheckpointError(f"{path}: unknown meta fields in file: {', '.join(unknown)}")
    meta = ModelMeta(**d, source=str(path))
    labels = meta.labels
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(n, str) and n.strip() for n in labels):
            raise CheckpointError(f"{path}: stored labels must be a list of non-empty names")
        if len(labels) != num_classes:
            raise CheckpointError(f"{path}: stores {len(labels)} labels but the model has {num_classes} classes")
    _check_number(path, "input_size", meta.input_size, _setting_range("input_size"))
    _check_number(path, "resize_short", meta.resize_short, Range(meta.input_size, _setting_range("resize_short").hi))
    for name, low in (("mean", Range(-1e3, 1e3)), ("std", Range(0, 1e3, lo_open=True))):
        value = getattr(meta, name)
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise CheckpointError(f"{path}: stored {name} must be 3 numbers (R, G, B), got {value!r}")
        setattr(meta, name, tuple(_check_number(path, name, v, low, integer=False) for v in value))
    if meta.clip_seconds is not None:
        _check_number(path, "clip_seconds", meta.clip_seconds, Range(0, 3600, lo_open=True), integer=False)
    meta.segment_step_s = _check_number(path, "segment_step_s", meta.segment_step_s, _setting_range("segment_step_s"),
                                        integer=False)
    return meta


def load_state(model: TDN, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strict load with a readable report of missing, unexpected and mis-shaped keys and non-finite tensors."""
    _check_tensors(path, state_dict)
    target = model.state_dict()
    missing = sorted(set(target) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(target))
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in state_dict.items()
             if k in target and v.shape != target[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({', '.join(missing[:6])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys ({', '.join(map(str, unexpected[:6]))})")
        if wrong:
            parts.append(f"wrong shapes ({'; '.join(wrong[:4])})")
        raise CheckpointError(f"{path} does not fit TDN-{model.cfg.arch} ({model.cfg.variant}): " + "; ".join(parts))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}, strict=True)


def _is_official(state: object) -> bool:
    """Whether ``state`` is an official TDN state dict (``module.base_model.*`` keys)."""
    return isinstance(state, Mapping) and any(str(k).startswith(("module.base_model.", "base_model.")) for k in state)


def stored_segments(path: str | Path) -> int | None:
    """T as stored in this project's file, or None for an official TDN checkpoint (which does
    not store it: the user chooses). Raises :class:`CheckpointError` for anything else."""
    path = Path(path)
    data = read_file(path)
    if isinstance(data, Mapping) and data.get("format") == FORMAT:
        return _config_from_dict(path, data.get("config")).num_segments
    state = data.get("state_dict", data) if isinstance(data, Mapping) else None
    if _is_official(state):
        return None
    raise CheckpointError(f"{path} is neither a tdn-live model nor an official TDN checkpoint")


def load_model_init(model: TDN, path: str | Path) -> None:
    """Initialise every weight of ``model`` from this project's model file ``path`` (fine-tuning);
    the file must have the same architecture, variant, T and classes (else CheckpointError)."""
    source = build_from_file(path, num_segments=model.cfg.num_segments)
    if replace(source.cfg, dropout=model.cfg.dropout) != model.cfg:  # dropout is a training setting
        raise CheckpointError(f"{path} holds {source.cfg}, which does not match the model being trained ({model.cfg})")
    load_state(model, source.state_dict(), Path(path))


def build_from_file(path: str | Path, *, num_segments: int) -> TDN:
    """A model, with its meta, from this project's file or an official TDN checkpoint.

    ``num_segments`` is used only for official files (ours store T).
    """
    path = Path(path)
    data = read_file(path)
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(data).__name__}")
    if data.get("format") == FORMAT:
        if data.get("version") != VERSION:
            raise CheckpointError(f"{path}: format version {data.get('version')!r} is not supported "
                                  f"(expected {VERSION})")
        cfg = _config_from_dict(path, data.get("config"))
        meta = _meta_from_dict(path, data.get("meta", {}), cfg.num_classes)
        model = TDN(cfg, meta=meta)
        load_state(model, data.get("state_dict"), path)
        return model
    state = data.get("state_dict", data)
    if _is_official(state):
        _check_tensors(path, state)
        _check_number(path, "num_segments", num_segments, _setting_range("num_segments"))
        try:
            derived = official_config(state, num_segments)
            remapped, _skipped = remap_official(state)
        except ValueError as exc:  # CheckpointError, or a TDNConfig refusing what the keys imply
            raise CheckpointError(f"{path}: {exc}") from exc
        model = TDN(_config_from_dict(path, derived.to_dict()), meta=ModelMeta(source=str(path)))
        load_state(model, remapped, path)
        return model
    if isinstance(state, Mapping) and "conv1.weight" in state and "layer1.0.conv1.weight" in state:
        raise CheckpointError(f"{path} is an ImageNet ResNet (torchvision format), not a video model: "
                              "use it to initialise training (train.imagenet)")
    raise CheckpointError(f"{path} is neither a tdn-live model nor an official TDN checkpoint "
                          f"(top-level keys: {', '.join(map(str, list(data)[:8]))})")
