"""Typed settings: ``config.yaml`` -> ``yaml.safe_load`` -> dataclass defaults -> CLI overrides.

Every setting lives in one of five sections (``model``, ``pipeline``, ``app``, ``train``, ``cluster``).
An unknown key or a value of the wrong type, outside its allowed choices or outside its
declared range (every numeric field has one: ``field(metadata=_range(...))``; NaN and
infinity are never allowed) raises :class:`ConfigError` naming the dotted key, the value
and what is allowed. Numbers written as strings (YAML 1.1 reads ``1e9`` and ``1e-3`` as
strings) are parsed for numeric fields. A setting with a command-line flag declares it once,
with its help text (``field(metadata=_flag("--topk", ...))``); :data:`SETTINGS` describes every
key, for these checks and for the flags :mod:`cli.options` generates.

Example::

    cfg = load_config("config.yaml", overrides={"model.num_segments": 16})
    cfg.model.num_segments  # 16
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from tdn.registry import (ARCHS, BACKENDS, DATA_FORMATS, DEVICES, ENGINE_CHOICES, ENGINE_PACKAGES, PRECISION_CHOICES,
                          VARIANTS)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"


class ConfigError(ValueError):
    """A configuration key or value is not allowed."""


def _choices(*allowed: Any) -> dict:
    return {"choices": allowed}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric setting: ``lo <= x <= hi`` (``<`` where the end is open)."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def describe(self, name: str) -> str:
        """E.g. ``"0 < window_seconds <= 60"``."""
        return f"{_num(self.lo)} {'<' if self.lo_open else '<='} {name} {'<' if self.hi_open else '<='} {_num(self.hi)}"


def _range(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> dict:
    return {"range": Range(lo, hi, lo_open, hi_open)}


def _positive(hi: float) -> dict:
    """``0 < x <= hi``: durations, rates."""
    return _range(0, hi, lo_open=True)


def _flag(flag: str, help: str, **metadata) -> dict:
    """A setting with a command-line flag (:mod:`cli.options` generates it); ``help`` is its help text.
    A bool setting's flag sets the opposite of its default (``--loop``, ``--no-realtime``)."""
    return {**metadata, "flag": flag, "help": help}


MAX_SEGMENTS = 64  # T; the official models use 8 or 16, memory grows linearly with T
MAX_CLASSES = 100_000


@dataclass
class ModelConfig:
    weights: str | None = field(default=None, metadata=_flag(
        "--weights", "model file, this project's or an official TDN checkpoint; none: the bundled demo model"))
    labels: str | None = field(default=None, metadata=_flag(
        "--labels", "label file, one class name per line; none: the labels stored with the weights "
                    "(tdn train: labels.txt beside the training list)"))
    arch: str = field(default="resnet50", metadata=_flag("--arch", "backbone", **_choices(*ARCHS)))
    num_segments: int = field(default=8, metadata=_flag(
        "--segments", "T, segments per window", **_range(1, MAX_SEGMENTS)))
    num_classes: int = field(default=400, metadata=_range(1, MAX_CLASSES))
    variant: str = field(default="tdn", metadata=_flag("--variant", "TDN or an ablation", **_choices(*VARIANTS)))
    device: str = field(default="auto", metadata=_flag("--device", "auto: cuda if present", **_choices(*DEVICES)))
    precision: str = field(default="auto", metadata=_flag(
        "--precision", "auto: bf16 on CPU, fp16 on CUDA", **_choices(*PRECISION_CHOICES)))
    engine: str = field(default="auto", metadata=_flag(
        "--engine", "inference engine; auto: the fastest measured for the device", **_choices(*ENGINE_CHOICES)))
    input_size: int = field(default=224, metadata=_flag(
        "--input-size", "crop size fed to the model", **_range(32, 1024)))
    resize_short: int = field(default=256, metadata=_flag(
        "--resize-short", "short side before the centre crop", **_range(32, 2048)))


@dataclass
class PipelineConfig:
    backend: str = field(default="auto", metadata=_flag(
        "--backend", "preprocessing backend; auto: dali on a CUDA machine", **_choices(*BACKENDS)))
    buffer_seconds: float = field(default=6.0, metadata=_positive(600))  # rolling frame buffer per source
    buffer_max_frames: int = field(default=256, metadata=_range(1, 4096))
    buffer_max_mb: int = field(default=512, metadata=_range(8, 65_536))  # image bytes per buffer, whatever the size
    window_seconds: float = field(default=2.0, metadata=_range(0.1, 60))  # time spanned by the T segment centres
    max_batch: int = field(default=8, metadata=_range(1, 256))
    max_wait_ms: float = field(default=20.0, metadata=_range(0, 10_000))
    cache_segments: bool = True
    open_timeout_s: float = field(default=10.0, metadata=_positive(3600))
    reconnect_initial_s: float = field(default=0.5, metadata=_positive(3600))
    reconnect_max_s: float = field(default=8.0, metadata=_positive(3600))
    read_timeout_s: float = field(default=5.0, metadata=_positive(3600))  # a stream silent this long counts as lost
    # frames downscaled at capture so the longer side fits; None: keep size
    capture_max_side: int | None = field(default=640, metadata=_range(32, 8192))
    # a pause between frames longer than this restarts the window grid
    max_frame_gap_s: float = field(default=1.0, metadata=_positive(3600))
    file_realtime: bool = field(default=True, metadata=_flag(
        "--no-realtime", "read video files as fast as they decode instead of at their frame rate"))
    file_loop: bool = field(default=False, metadata=_flag("--loop", "restart video files at their end"))
    smoothing: int = field(default=3, metadata=_flag("--smoothing", "windows averaged", **_range(1, 100)))
    threshold: float = field(default=0.0, metadata=_flag(
        "--threshold", "below this top-1 score nothing is claimed", **_range(0, 1)))
    topk: int = field(default=5, metadata=_flag(
        "--topk", "labels per prediction; more than the model's classes: all of them", **_range(1, 1000)))
    # a clip job (predict, app upload, eval item) estimated to need more is refused
    clip_memory_mb: int = field(default=1024, metadata=_range(64, 65_536))
    stats_interval_s: float = field(default=1.0, metadata=_positive(3600))  # seconds between a stream's stats events


@dataclass
class AppConfig:
    host: str = field(default="127.0.0.1", metadata=_flag("--host", "bind address; 0.0.0.0 only with auth"))
    port: int = field(default=7860, metadata=_flag("--port", "port", **_range(1, 65535)))
    auth: str | None = None  # "user:password"; also read from $TDN_APP_AUTH
    max_upload_mb: int = field(default=200, metadata=_range(1, 100_000))
    # WebRTC relay for browsers that cannot reach the server directly; None: host candidates only
    # (no STUN/TURN traffic); "turn:host:3478" or "turns:host:5349", checked by app.webrtc.ice_servers
    turn_url: str | None = None
    turn_username: str | None = None
    turn_credential: str | None = None  # given to the browser with the page: use a limited, short-lived one
    webcam_sessions: int = field(default=4, metadata=_range(1, 64))  # browser webcams served at once
    max_cameras: int = field(default=4, metadata=_range(1, 64))  # camera streams one browser session may open
    # live streams (webcams and cameras of every session) the server runs at once
    max_streams: int = field(default=16, metadata=_range(1, 1024))
    # a tab's streams close after this long without frames/refreshes (re-open on return)
    idle_timeout_s: float = field(default=30.0, metadata=_positive(86_400))
    refresh_s: float = field(default=0.25, metadata=_positive(60))  # how often camera views and their stats refresh
    mirror_preview: bool = True  # webcam preview mirrored like a selfie (the model always sees the camera's view)
    clip_jobs: int = field(default=1, metadata=_range(1, 16))  # clip uploads scored at once across all sessions
    # clip uploads waiting for a turn; more are told the app is busy
    clip_queue: int = field(default=4, metadata=_range(0, 256))
    # the page's starting threshold (each tab may move it); chosen from the demo model's scores, see docs/app.md
    threshold: float = field(default=0.6, metadata=_range(0, 1))


@dataclass
class TrainConfig:
    train_list: str | None = field(default=None, metadata=_flag("--train-list", "TDN list to train on"))
    val_list: str | None = field(default=None, metadata=_flag(
        "--val-list", "TDN list of validation clips (tdn eval: the list to evaluate)"))
    root: str = field(default="", metadata=_flag("--root", "prefix for the list's paths; empty: the list's folder"))
    data_format: str = field(default="video", metadata=_flag("--data-format", "list format", **_choices(*DATA_FORMATS)))
    image_template: str = "img_{:05d}.jpg"
    epochs: int = field(default=10, metadata=_flag(
        "--epochs", "0: initialise and save, no training", **_range(0, 10_000)))
    batch_size: int = field(default=8, metadata=_flag("--batch-size", "clips per step", **_range(1, 4096)))
    lr: float = field(default=0.01, metadata=_flag("--lr", "SGD learning rate", **_positive(10)))
    weight_decay: float = field(default=5e-4, metadata=_range(0, 1))
    momentum: float = field(default=0.9, metadata=_range(0, 1, hi_open=True))
    dropout: float = field(default=0.5, metadata=_range(0, 1, hi_open=True))
    workers: int = field(default=2, metadata=_range(0, 256))
    seed: int = field(default=0, metadata=_flag("--seed", "random seed", **_range(0, 2**32 - 1)))
    amp: bool = True
    imagenet: str | None = None  # torchvision-format ResNet checkpoint for initialisation
    output: str = field(default="runs/train", metadata=_flag("--output", "folder for checkpoints, log and config"))
    resume: str | None = field(default=None, metadata=_flag("--resume", "training state (a last.pt) to resume from"))
    flip: bool = True
    flip_swap: str | None = None  # "a:b,c:d" class pairs swapped under horizontal flip
    # linear learning-rate warm-up before the cosine decay
    warmup_epochs: int = field(default=1, metadata=_range(0, 10_000))
    clip_grad: float = field(default=20.0, metadata=_range(0, 1_000_000))  # gradient-norm clipping; 0 = off
    # time one training clip spans, stored with the model; None: measured
    clip_seconds: float | None = field(default=None, metadata=_positive(3600))
    # sample windows on the live scheduler's time grid (video lists): T centres over clip_seconds (null:
    # pipeline.window_seconds) by frame time, instead of T segments spread over the whole clip
    time_grid: bool = False
    # time between a segment's neighbouring frames (tdn.sampling), stored with the model and used
    # wherever it runs; 0: adjacent captured frames, as TDN
    segment_step_s: float = field(default=0.0, metadata=_range(0, 1))
    init: str | None = None  # this project's model file (same architecture and classes) to start from


@dataclass
class ClusterConfig:
    """Cluster mode on Ray (``tdn cluster``, docs/cluster.md): cells, controller, HTTP front end."""

    address: str | None = field(default=None, metadata=_flag(
        "--address", "Ray cluster to join (e.g. 10.0.0.5:6379); none: start a local Ray"))
    host: str = field(default="127.0.0.1", metadata=_flag(
        "--frontend-host", "HTTP front end bind address; 0.0.0.0 only on a trusted network"))
    port: int = field(default=8470, metadata=_flag("--frontend-port", "HTTP front end port", **_range(1, 65535)))
    namespace: str = "tdn"  # Ray namespace of the controller, the cells and the Serve application
    cells: int = field(default=0, metadata=_flag(
        "--cells", "camera cells to start; 0: one per node", **_range(0, 4096)))
    cell_cpus: float = field(default=1.0, metadata=_range(0, 1024))  # CPUs a cell reserves (1 per node: 1 cell each)
    cell_gpus: float = field(default=0.0, metadata=_range(0, 64))  # GPUs a cell reserves (1: one cell per GPU)
    torch_threads: int = field(default=1, metadata=_range(1, 1024))  # intra-op threads of a cell's model
    cell_restarts: int = field(default=3, metadata=_range(0, 1000))  # times Ray restarts a crashed cell
    health_interval_s: float = field(default=1.0, metadata=_positive(60))  # controller checks cells this often
    health_timeout_s: float = field(default=10.0, metadata=_positive(600))  # a cell silent this long is dead
    event_buffer: int = field(default=4096, metadata=_range(16, 1_000_000))  # events kept per cell and for /events
    local_cpus: int = field(default=2, metadata=_range(1, 1024))  # CPUs of the local Ray that tdn cluster up starts
    object_store_mb: int = field(default=200, metadata=_range(80, 1_000_000))  # its object store (frames stay out)
    predict_batch: int = field(default=8, metadata=_range(1, 256))  # POST /predict clips batched in one go
    predict_wait_ms: float = field(default=50.0, metadata=_range(0, 10_000))  # longest wait to fill that batch


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    app: AppConfig = field(default_factory=AppConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _number(key: str, base: type, value: Any) -> int | float:
    """``value`` as ``base`` (int or float), parsing numeric strings; ints must be whole numbers."""
    kind = "an integer" if base is int else "a number"
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(f"config key '{key}' must be {kind}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"config key '{key}' must be {kind}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
    if base is float:
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"config key '{key}' is too large to be a float: {value}") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        value = int(value)
    return value


@dataclass(frozen=True)
class Setting:
    """One config key as its field declares it: type, what is allowed, and its command-line flag if any."""

    key: str  # "section.name"
    type: type  # bool, int, float or str
    optional: bool  # null allowed
    default: Any
    choices: tuple = ()
    range: Range | None = None
    flag: str | None = None
    help: str | None = None

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]


def _settings() -> dict[str, Setting]:
    found = {}
    for section in fields(Config):
        hints = typing.get_type_hints(section.default_factory)
        for f in fields(section.default_factory):
            hint, key = hints[f.name], f"{section.name}.{f.name}"
            args = typing.get_args(hint)
            optional = isinstance(hint, types.UnionType) and type(None) in args
            base = next(a for a in args if a is not type(None)) if optional else hint
            found[key] = Setting(key, base, optional, f.default, f.metadata.get("choices", ()), f.metadata.get("range"),
                                 f.metadata.get("flag"), f.metadata.get("help"))
    return found


SETTINGS: dict[str, Setting] = _settings()  # "section.name" -> Setting, every key


def _check_value(s: Setting, value: Any) -> Any:
    """Coerce ``value`` to the setting's type and check its choices or range, or raise a ConfigError naming it."""
    key = s.key
    if value is None:
        if s.optional:
            return None
        raise ConfigError(f"config key '{key}' may not be null (expected {s.type.__name__})")
    if s.type is bool and not isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if s.type in (int, float):
        value = _number(key, s.type, value)
        if s.range is not None and value not in s.range:
            null = " (or null)" if s.optional else ""
            raise ConfigError(f"config key '{key}' must satisfy {s.range.describe(s.name)}{null}; got {value!r}")
        return value
    if not isinstance(value, s.type):
        raise ConfigError(f"config key '{key}' must be {s.type.__name__}, got {value!r}")
    if s.choices and value not in s.choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, s.choices))}; got {value!r}")
    return value


# (smaller, larger): settings that only make sense in this order
_ORDERED = (
    ("pipeline.window_seconds", "pipeline.buffer_seconds"),  # the buffer must hold a whole window
    ("pipeline.reconnect_initial_s", "pipeline.reconnect_max_s"),
    ("model.input_size", "model.resize_short"),  # the crop is taken from the resized frame
)


def _check_engine(cfg: Config) -> None:
    """An engine named explicitly must have its Python package installed."""
    package = ENGINE_PACKAGES.get(cfg.model.engine)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigError(f"config key 'model.engine' is {cfg.model.engine!r}, which needs the Python package "
                          f"{package!r}; it is not installed (pip install 'tdn-live[{cfg.model.engine}]')")


def _check_order(cfg: Config) -> None:
    for small, large in _ORDERED:
        a, b = (getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1]) for k in (small, large))
        if a > b:
            raise ConfigError(f"config key '{small}' ({a:g}) must not exceed '{large}' ({b:g})")


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
        known = [f.name for f in fields(target)]
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown config key '{section}.{key}'; allowed in '{section}': {', '.join(known)}"
                )
            setattr(target, key, _check_value(SETTINGS[f"{section}.{key}"], value))


def load_config(path: str | Path | None = DEFAULT_CONFIG_PATH, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if given), then ``{"section.key": value}`` overrides."""
    cfg = Config()
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path} is a directory, not a config file")
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.end]!r})") from exc
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
    _check_order(cfg)
    _check_engine(cfg)
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.num_segments=16"`` -> ``("model.num_segments", 16)`` (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key.strip()}: value {raw!r} is not valid YAML: {exc}") from exc
