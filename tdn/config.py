"""Typed settings: ``config.yaml`` -> ``yaml.safe_load`` -> dataclass defaults -> CLI overrides.

Every setting lives in one of four sections (``model``, ``pipeline``, ``app``, ``train``).
An unknown key or a value of the wrong type or outside its allowed choices raises
:class:`ConfigError` naming the dotted key and what is allowed.

Example::

    cfg = load_config("config.yaml", overrides={"model.num_segments": 16})
    cfg.model.num_segments  # 16
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"


class ConfigError(ValueError):
    """A configuration key or value is not allowed."""


def _choices(*allowed: Any) -> dict:
    return {"choices": allowed}


@dataclass
class ModelConfig:
    weights: str | None = None  # None: the bundled demo model
    labels: str | None = None  # label file (one name per line); None: from the weights
    arch: str = field(default="resnet50", metadata=_choices("resnet18", "resnet34", "resnet50", "resnet101"))
    num_segments: int = 8
    num_classes: int = 400
    variant: str = field(default="tdn", metadata=_choices("tdn", "tsn", "stdm", "ltdm", "tsm"))
    device: str = field(default="auto", metadata=_choices("auto", "cpu", "cuda"))
    precision: str = field(default="auto", metadata=_choices("auto", "fp32", "bf16", "fp16"))
    input_size: int = 224  # crop size fed to the model
    resize_short: int = 256  # short side before the centre crop


@dataclass
class PipelineConfig:
    backend: str = field(default="auto", metadata=_choices("auto", "dali", "cpu"))
    buffer_seconds: float = 6.0  # rolling frame buffer per source
    buffer_max_frames: int = 256
    window_seconds: float = 2.0  # time spanned by the T segment centres
    max_batch: int = 8
    max_wait_ms: float = 20.0
    cache_segments: bool = True
    open_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 8.0
    read_timeout_s: float = 5.0  # a stream silent this long counts as lost
    capture_max_side: int | None = 640  # frames downscaled at capture so the longer side fits; null: keep size
    max_frame_gap_s: float = 1.0  # a pause between frames longer than this restarts the window grid
    file_realtime: bool = True  # files played at their frame rate (False: as fast as they decode)
    file_loop: bool = False  # files restart at the end instead of ending
    smoothing: int = 3  # windows averaged by the post-processor
    threshold: float = 0.0  # below this top-1 score nothing is claimed
    topk: int = 5
    stats_interval_s: float = 1.0  # seconds between a stream's stats events


@dataclass
class AppConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None  # "user:password"; also read from $TDN_APP_AUTH
    max_upload_mb: int = 200
    stream_every: float = 0.1
    webcam_time_limit: float = 600.0  # seconds a browser webcam stream runs before the user restarts it
    webcam_sessions: int = 4  # browser webcams served at once (Gradio concurrency limit)
    max_cameras: int = 4  # camera streams one browser session may open
    max_streams: int = 16  # live streams (webcams and cameras of every session) the server runs at once
    idle_timeout_s: float = 30.0  # a tab's streams close after this long without frames/refreshes (re-open on return)
    refresh_s: float = 0.25  # how often camera views and their stats refresh
    mirror_preview: bool = True  # webcam preview mirrored like a selfie (the model always sees the camera's view)


@dataclass
class TrainConfig:
    train_list: str | None = None
    val_list: str | None = None
    root: str = ""
    data_format: str = field(default="video", metadata=_choices("video", "frames"))
    image_template: str = "img_{:05d}.jpg"
    epochs: int = 10
    batch_size: int = 8
    lr: float = 0.01
    weight_decay: float = 5e-4
    momentum: float = 0.9
    dropout: float = 0.5
    workers: int = 2
    seed: int = 0
    amp: bool = True
    imagenet: str | None = None  # torchvision-format ResNet checkpoint for initialisation
    output: str = "runs/train"
    resume: str | None = None
    flip: bool = True
    flip_swap: str | None = None  # "a:b,c:d" class pairs swapped under horizontal flip
    warmup_epochs: int = 1  # linear learning-rate warm-up before the cosine decay
    clip_grad: float = 20.0  # gradient-norm clipping; 0 = off
    clip_seconds: float | None = None  # time one training clip spans, stored with the model; None: measured


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    app: AppConfig = field(default_factory=AppConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_value(key: str, section_cls: type, f: dataclasses.Field, value: Any) -> Any:
    """Coerce ``value`` to the field's type or raise a ConfigError naming ``key``."""
    hint = typing.get_type_hints(section_cls)[f.name]
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key '{key}' may not be null (expected {base.__name__})")
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if base is bool and not isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
    if not isinstance(value, base):
        raise ConfigError(f"config key '{key}' must be {base.__name__}, got {value!r}")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


_SECTIONS = {f.name: f.default_factory for f in fields(Config)}


def _apply(cfg: Config, data: Mapping[str, Any], source: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(_SECTIONS)}), got {type(data).__name__}")
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown config section '{section}'; allowed: {', '.join(_SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: section '{section}' must be a mapping, got {type(values).__name__}")
        target = getattr(cfg, section)
        known = {f.name: f for f in fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown config key '{section}.{key}'; allowed in '{section}': {', '.join(known)}"
                )
            setattr(target, key, _check_value(f"{section}.{key}", type(target), known[key], value))


def load_config(path: str | Path | None = DEFAULT_CONFIG_PATH, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if given), then ``{"section.key": value}`` overrides."""
    cfg = Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        _apply(cfg, data, str(path))
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override '{dotted}' must be 'section.key'")
        nested.setdefault(section, {})[key] = value
    _apply(cfg, nested, "command line")
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.num_segments=16"`` -> ``("model.num_segments", 16)`` (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    return key.strip(), yaml.safe_load(raw)
