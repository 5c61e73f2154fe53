"""Fixtures shared by the integration tests."""
from __future__ import annotations

import pytest
import torch

from tdn.api import load_model

TINY_T = 4  # segments of the tiny model


@pytest.fixture(scope="module")
def tiny_model():
    """A random TDN-R18 (T=4, 64 px crops, classes a/b/c), fp32: fast enough for the streaming service.
    Its head is drawn with std 0.5 (confident, distinct classes); a module may redraw it."""
    torch.manual_seed(0)
    m = load_model(arch="resnet18", num_segments=TINY_T, num_classes=3, precision="fp32", labels=["a", "b", "c"])
    m.meta.resize_short, m.meta.input_size = 72, 64
    with torch.no_grad():
        m.fc.weight.normal_(0, 0.5)
    return m
