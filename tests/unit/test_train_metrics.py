"""Evaluation metrics from a known confusion matrix."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tdn.data import BadClip, ClipRecord
from tdn.evaluate import Metrics, clip_predictions, evaluate


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


def test_evaluate_counts_two_way_decisions():
    """A model that always scores class 0 > 1 > 2: clips of class 0 win both two-way choices,
    clips of class 1 win only against 2, clips of class 2 win none."""

    class Fixed(torch.nn.Module):
        def forward(self, x):  # (N, T, L, 3, H, W) -> (N, 3)
            return torch.tensor([3.0, 2.0, 1.0]).expand(x.shape[0], 3)

    views = torch.zeros(4, 1, 1, 5, 3, 2, 2)  # 4 clips, 1 view each
    targets = torch.tensor([0, 1, 1, 2])
    m = evaluate(Fixed(), [(views, targets)], 3)
    assert m.outranks.tolist() == [[0, 1, 1], [0, 0, 2], [0, 0, 0]]
    assert m.pair_accuracy(0, 1) == pytest.approx(1 / 3)  # 1 of 3 clips (class 0 right, both class-1 clips wrong)
    assert m.pair_accuracy(1, 2) == pytest.approx(2 / 3)
    assert m.confusion[:, 0].sum() == 4 and m.to_dict()["outranks"] == m.outranks.tolist()


def test_clip_predictions_match_scored_and_skipped_clips_back_to_the_list():
    records = [ClipRecord(Path("a.mp4"), 0), ClipRecord(Path("bad.mp4"), 1), ClipRecord(Path("c.mp4"), 1)]
    m = Metrics(torch.tensor([[1, 0], [1, 0]]), labels=["left", "right"], outcomes=[(0, 0, 0.9), (1, 0, 0.6)],
                skipped=[BadClip("bad.mp4", "is not a video")])
    rows = clip_predictions(records, m)
    assert [(r["clip"], r["predicted_name"], r["correct"], r["error"]) for r in rows] == [
        ("a.mp4", "left", True, None), ("bad.mp4", None, None, "is not a video"), ("c.mp4", "left", False, None)]
    assert rows[2]["label_name"] == "right" and rows[2]["score"] == 0.6


def test_clip_predictions_refuse_metrics_of_another_list_or_of_several_processes():
    records = [ClipRecord(Path("a.mp4"), 0), ClipRecord(Path("b.mp4"), 1)]
    with pytest.raises(ValueError, match="1 scored and 0 skipped clips do not make up the 2 records"):
        clip_predictions(records, Metrics(torch.zeros(2, 2, dtype=torch.int64), outcomes=[(0, 0, 0.5)]))
    with pytest.raises(ValueError, match="does not match the records at b.mp4"):
        clip_predictions(records, Metrics(torch.zeros(2, 2, dtype=torch.int64), outcomes=[(0, 0, 0.5), (0, 1, 0.5)]))
    with pytest.raises(ValueError, match="single-process"):
        clip_predictions(records, Metrics(torch.zeros(2, 2, dtype=torch.int64)))
