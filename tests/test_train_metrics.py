"""Evaluation metrics from a known confusion matrix."""
from __future__ import annotations

import pytest
import torch

from tdn.evaluate import Metrics


def test_metrics_from_confusion():
    confusion = torch.tensor([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    m = Metrics(confusion, top5_correct=8, loss_sum=4.0, labels=["left", "right", "still"])
    assert m.count == 8
    assert m.top1 == pytest.approx(5 / 8)
    assert m.top5 == pytest.approx(1.0)
    assert m.loss == pytest.approx(0.5)
    assert m.per_class == [pytest.approx(0.75), pytest.approx(0.5), None]
    assert m.mean_class_accuracy == pytest.approx(0.625)
    d = m.to_dict()
    assert d["per_class"]["still"] is None and d["confusion"] == confusion.tolist()
    text = m.format()
    assert "top-1: 62.50%" in text and "top-3: 100.00%" in text
    assert "right" in text and "75.0%" in text
