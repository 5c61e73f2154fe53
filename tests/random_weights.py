"""A weights file of a randomly initialised TDN whose outputs are far from trivial (random BatchNorm
statistics, a head with spread-out logits), for export and engine tests."""
from __future__ import annotations

from pathlib import Path

import torch

from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from tdn.model import BasicBlock, Bottleneck, create_model

SIZE = 64


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding and mapping errors show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def random_weights(path: Path, *, arch: str = "resnet18", variant: str = "tdn", num_segments: int = 8,
                   layers: tuple[int, int, int, int] | None = None, size: int = SIZE, classes: int = 6,
                   seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = create_model(arch, num_segments=num_segments, num_classes=classes, variant=variant, layers=layers)
    randomise_bn(model, seed)
    for block in model.modules():  # small residual branches, as in a trained ResNet: activations stay in
        if isinstance(block, (Bottleneck, BasicBlock)):  # range through 100 layers (logits of order 10, not 1000)
            last_bn = block.bn3 if isinstance(block, Bottleneck) else block.bn2
            last_bn.weight.data.mul_(0.2)
    torch.nn.init.normal_(model.fc.weight, 0, 0.05)
    meta = ModelMeta(labels=[f"class{i}" for i in range(classes)], input_size=size, resize_short=size + size // 8,
                     clip_seconds=2.0)
    return save_model(path, model.eval(), meta)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """max |got - expected| over the range of ``expected`` (the issue's measure of exactness)."""
    spread = float(expected.max() - expected.min())
    return float((got - expected).abs().max()) / spread
