"""Weights files: this project's own, official TDN releases, torchvision ImageNet ResNets.

Every file is read with ``torch.load(..., weights_only=True)``; a missing, truncated, foreign
or unsafe file raises :class:`CheckpointError` (a ``ValueError``) or ``FileNotFoundError``
naming the file and what was wrong. Loading is strict: every key of the file is used or
deliberately skipped, every parameter of the model is filled.

This project's format::

    {"format": "tdn-live", "version": 1, "config": TDNConfig fields, "meta": ModelMeta fields,
     "state_dict": {...}}
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Mapping

import torch

from tdn.meta import ModelMeta
from tdn.model import ARCHS, TDN, TDNConfig

FORMAT = "tdn-live"
VERSION = 1


class CheckpointError(ValueError):
    """A weights file could not be used; the message names the file and the reason."""


def read_file(path: str | Path) -> object:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"weights file {path} is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"refused to load {path}: it holds Python objects other than tensors and plain containers, "
                f"which could run code (loaded with weights_only=True): {str(exc).splitlines()[0]}"
            ) from exc
        raise CheckpointError(f"{path} is not a PyTorch weights file or is corrupt: {exc}") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"could not read {path}: truncated or not a PyTorch weights file ({exc})") from exc


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
    if "new_fc.weight" not in keys:
        raise CheckpointError("official checkpoint has no new_fc.weight: cannot tell the number of classes")
    return TDNConfig(arch=arch, layers=tuple(layers), num_segments=num_segments,
                     num_classes=keys["new_fc.weight"].shape[0], variant="tdn")


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(), "meta": meta.to_dict(),
                "state_dict": state}, path)
    return path


_RENAMED_CONFIG_KEYS = {"neighbours": "segment_length"}  # files written before the rename


def _config_from_dict(path: Path, d: Mapping) -> TDNConfig:
    try:
        return TDNConfig(**{_RENAMED_CONFIG_KEYS.get(k, k): tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config in file: {exc}") from exc


def load_state(model: TDN, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strict load with a readable report of missing, unexpected and mis-shaped keys."""
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
            parts.append(f"unexpected {len(unexpected)} keys ({', '.join(unexpected[:6])})")
        if wrong:
            parts.append(f"wrong shapes ({'; '.join(wrong[:4])})")
        raise CheckpointError(f"{path} does not fit TDN-{model.cfg.arch} ({model.cfg.variant}): " + "; ".join(parts))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}, strict=True)


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
            raise CheckpointError(f"{path}: format version {data.get('version')} is not supported (expected {VERSION})")
        meta_fields = {k: tuple(v) if k in ("mean", "std") else v for k, v in data.get("meta", {}).items()}
        try:
            meta = ModelMeta(**meta_fields, source=str(path))
        except TypeError as exc:
            raise CheckpointError(f"{path}: invalid meta in file: {exc}") from exc
        model = TDN(_config_from_dict(path, data["config"]), meta=meta)
        load_state(model, data["state_dict"], path)
        return model
    state = data.get("state_dict", data)
    if isinstance(state, Mapping) and any(str(k).startswith(("module.base_model.", "base_model.")) for k in state):
        model = TDN(official_config(state, num_segments), meta=ModelMeta(source=str(path)))
        remapped, _skipped = remap_official(state)
        load_state(model, remapped, path)
        return model
    if isinstance(state, Mapping) and "conv1.weight" in state and "layer1.0.conv1.weight" in state:
        raise CheckpointError(f"{path} is an ImageNet ResNet (torchvision format), not a video model: "
                              "use it to initialise training (train.imagenet)")
    raise CheckpointError(f"{path} is neither a tdn-live model nor an official TDN checkpoint "
                          f"(top-level keys: {', '.join(map(str, list(data)[:8]))})")
