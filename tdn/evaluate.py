"""Evaluation on a TDN list (``tdn eval``): top-1/top-5, per-class accuracy, confusion matrix.

Scores are softmax probabilities averaged over the test views (``1x1``: T centred segments,
centre crop; ``10x3``: 10 temporal clips x 3 crops). With ``torch.distributed`` initialised,
each process scores its share of the clips and the counts are summed. Clips that cannot be read
(:class:`tdn.data.BadClip`, set aside by :func:`tdn.data.collate_clips`) are not counted; they
are listed in ``skipped`` with the reason, and ``tdn eval`` fails, naming them, when no clip is readable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tdn.data import ClipRecord
from tdn.labels import label_name


@dataclass
class Metrics:
    """Counts over a set of clips; accuracies are fractions in [0, 1]."""

    confusion: torch.Tensor  # int64 (K, K): row = true class, column = predicted class
    top5_correct: int = 0
    loss_sum: float = 0.0
    labels: list[str] | None = field(default=None, repr=False)
    # int64 (K, K): [i, j] = clips of class i that score class i above class j (a two-way decision)
    outranks: torch.Tensor | None = field(default=None, repr=False)
    skipped: list = field(default_factory=list)  # tdn.data.BadClip: clips that could not be read
    # per scored clip, in the loader's order: (true class, predicted class, the predicted class's probability);
    # None when distributed (each process scores a shard, in its sampler's order)
    outcomes: list[tuple[int, int, float]] | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def top1(self) -> float:
        return float(self.confusion.diag().sum()) / max(self.count, 1)

    @property
    def top5(self) -> float:
        return self.top5_correct / max(self.count, 1)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def per_class(self) -> list[float | None]:
        """Recall of each class (None for classes with no clips)."""
        totals = self.confusion.sum(1)
        return [float(self.confusion[k, k]) / int(n) if n else None for k, n in enumerate(totals)]

    @property
    def mean_class_accuracy(self) -> float:
        values = [v for v in self.per_class if v is not None]
        return sum(values) / max(len(values), 1)

    def pair_accuracy(self, a: int, b: int) -> float | None:
        """Accuracy of the two-way choice between classes ``a`` and ``b`` on the clips of either:
        the fraction whose own class scores above the other one (0.5 = cannot tell them apart)."""
        totals = self.confusion.sum(1)
        clips = int(totals[a] + totals[b])
        return float(self.outranks[a, b] + self.outranks[b, a]) / clips if clips else None

    def to_dict(self) -> dict:
        k = self.confusion.shape[0]
        names = [label_name(self.labels, i) for i in range(k)]
        return {"count": self.count, "top1": self.top1, "top5": self.top5,
                "mean_class_accuracy": self.mean_class_accuracy, "loss": self.loss, "labels": names,
                "per_class": dict(zip(names, self.per_class)), "confusion": self.confusion.tolist(),
                "outranks": None if self.outranks is None else self.outranks.tolist(),
                "skipped": [{"clip": b.path, "error": b.error} for b in self.skipped]}

    def format(self) -> str:
        """A human-readable report: accuracies, then the confusion matrix with class names."""
        d = self.to_dict()
        k = self.confusion.shape[0]
        width = max(len(n) for n in d["labels"])
        skipped = f" (skipped {len(self.skipped)} unreadable)" if self.skipped else ""
        lines = [f"clips: {d['count']}{skipped}  top-1: {100 * d['top1']:.2f}%  top-{min(5, k)}: {100 * d['top5']:.2f}%  "
                 f"mean class accuracy: {100 * d['mean_class_accuracy']:.2f}%",
                 "confusion matrix (rows: true class, columns: predicted class index):",
                 " " * (width + 3) + " ".join(f"{i:>4d}" for i in range(k)) + "  recall"]
        for i, name in enumerate(d["labels"]):
            recall = d["per_class"][name]
            cells = " ".join(f"{int(v):>4d}" for v in self.confusion[i])
            recall_text = f"  {100 * recall:5.1f}%" if recall is not None else "     -"
            lines.append(f"{i:>2d} {name:<{width}}" + cells + recall_text)
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} clip(s) that could not be read (not counted above):")
            lines += [f"  {b}" for b in self.skipped]
        return "\n".join(lines)


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader, num_classes: int, *, labels: list[str] | None = None,
             progress: bool = False, device: torch.device | str = "cpu",
             autocast_dtype: torch.dtype | None = None) -> Metrics:
    """Score every clip of ``loader`` with ``model`` in eval mode, under autocast to ``autocast_dtype``
    if given (an fp32 training model). Batches are ``(views, labels)`` with views ``(B, V, T, L, 3, S, S)``,
    or :func:`tdn.data.collate_clips`'s ``(views or None, labels, bad clips)``."""
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    outranks = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    top5_correct, loss_sum, skipped, outcomes = 0, 0.0, [], []
    k = min(5, num_classes)
    batches = loader
    if progress:
        from tqdm import tqdm
        batches = tqdm(loader, desc="eval", unit="batch", leave=False, mininterval=2.0)
    for views, target, *bad in batches:
        skipped += bad[0] if bad else []
        if views is None:  # every clip of the batch was unreadable
            continue
        b, v = views.shape[:2]
        with torch.autocast(torch.device(device).type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(views.flatten(0, 1).to(device, non_blocking=True))  # (B, V, T, ...) -> (B*V, T, ...)
        probs = F.softmax(logits.float(), dim=-1).view(b, v, -1).mean(1).cpu()  # (B*V, K) -> (B, K)
        loss_sum += float(F.nll_loss(probs.clamp_min(1e-8).log(), target, reduction="sum"))
        top5_correct += int((probs.topk(k, dim=1).indices == target[:, None]).any(1).sum())
        score, predicted = probs.max(1)
        confusion += torch.bincount(target * num_classes + predicted,
                                    minlength=num_classes**2).view(num_classes, num_classes)
        own = probs.gather(1, target[:, None])  # (B, 1): each clip's score for its true class
        outranks.index_add_(0, target, (own > probs).long())  # (B, K) -> rows of the true classes
        outcomes += zip(target.tolist(), predicted.tolist(), score.tolist())
    if _is_distributed():
        totals = torch.tensor([top5_correct, loss_sum], dtype=torch.float64)
        dist.all_reduce(confusion)
        dist.all_reduce(outranks)
        dist.all_reduce(totals)
        top5_correct, loss_sum = int(totals[0]), float(totals[1])
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, skipped)
        skipped = [b for part in gathered for b in part]
    model.train(was_training)
    return Metrics(confusion, top5_correct, loss_sum, labels, outranks, skipped,
                   None if _is_distributed() else outcomes)



PREDICTION_COLUMNS = ("clip", "label", "label_name", "predicted", "predicted_name", "score", "correct", "error")


def clip_predictions(records: list[ClipRecord], metrics: Metrics) -> list[dict]:
    """One row per record of the list that was evaluated (in order, :data:`PREDICTION_COLUMNS`): what the
    model predicted and with what probability, or, for a clip that could not be read, the error.

    ``metrics`` must come from :func:`evaluate` on a loader over exactly ``records`` in order, in one
    process: scored clips and skipped ones both come in that order, so they are matched back by walking it."""
    if metrics.outcomes is None:
        raise ValueError("per-clip predictions are kept only by a single-process evaluation")
    if len(metrics.outcomes) + len(metrics.skipped) != len(records):
        raise ValueError(f"{len(metrics.outcomes)} scored and {len(metrics.skipped)} skipped clips do not make "
                         f"up the {len(records)} records")
    outcomes, skipped, rows = iter(metrics.outcomes), list(metrics.skipped), []
    for record in records:
        row = {"clip": str(record.path), "label": record.label, "label_name": label_name(metrics.labels, record.label)}
        if skipped and skipped[0].path == str(record.path):
            rows.append({**row, "predicted": None, "predicted_name": None, "score": None, "correct": None,
                         "error": skipped.pop(0).error})
            continue
        target, predicted, score = next(outcomes)
        if target != record.label:
            raise ValueError(f"evaluation order does not match the records at {record.path}")
        rows.append({**row, "predicted": predicted, "predicted_name": label_name(metrics.labels, predicted),
                     "score": round(score, 6), "correct": predicted == target, "error": None})
    return rows
