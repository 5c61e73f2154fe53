"""``tdn info``: parameters and multiply-adds of a model, counted by running it."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from tdn.model import TDN, TDNConfig


def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of one forward pass, counted by PyTorch's FLOP counter (conv, linear, matmul).

    The counter reports FLOPs as 2 per multiply-add; the paper's "FLOPs" are multiply-adds.
    """
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return counter.get_total_flops() // 2


def model_info(arch: str, num_segments: int, variant: str = "tdn", size: int = 224, num_classes: int = 400) -> dict:
    """``{"params": int, "gmacs": float}`` for batch 1 at ``size`` x ``size``.

    Built on the meta device: shapes and counts without allocating or computing anything.
    """
    with torch.device("meta"):
        model = TDN(TDNConfig(arch=arch, num_segments=num_segments, num_classes=num_classes, variant=variant)).eval()
        example = torch.zeros(1, num_segments, model.cfg.segment_length, 3, size, size)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "gmacs": round(count_macs(model, example) / 1e9, 3)}

