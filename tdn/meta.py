"""What a model's weights need besides themselves: class names and the preprocessing they expect.

Declared with the weights (stored in this project's files, defaults for official ones) and
handed to the model when it is built (``TDN(cfg, meta=...)``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelMeta:
    """Class names and preprocessing of a model's weights."""

    labels: list[str] | None = None
    input_size: int = 224
    resize_short: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    clip_seconds: float | None = None  # time spanned by a training clip, if known
    segment_step_s: float = 0.0  # time between a segment's frames it was trained on (0: adjacent frames; tdn.sampling)
    source: str = ""  # the file the weights were loaded from

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d
