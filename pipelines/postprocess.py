"""Scores to labels, the one place: softmax, smoothing over recent windows, threshold, top-k,
label changes. The service (so `tdn stream`) and the app use these.

Top-k: ``k`` must be >= 1; a ``k`` above the number of classes means all classes. Scores
that are not finite (NaN/inf from the model) raise :class:`NonFiniteScores` and never
reach a prediction.

Example::

    post = PostProcessor(labels, smoothing=3, threshold=0.5, topk=5)
    p = post.update(logits)        # logits (K,) of the newest window
    p.label                         # top-1 name, or None when its smoothed score < threshold
    p.changed                       # True when p.label differs from p.previous (a label change)
    post.reset()                    # after a gap in the stream: the next window is not averaged with older ones
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from tdn.labels import label_name


@dataclass(frozen=True)
class Prediction:
    """A post-processed prediction.

    scores: float32 ``(K,)`` probabilities averaged over the last ``smoothing`` windows.
    topk: the ``topk`` best ``(label, score)`` pairs, best first (whatever the threshold).
    label: the top-1 label, or None when its score is below the threshold (nothing claimed).
    previous: the label the stream's previous prediction claimed (None: nothing, or none yet).
    """

    scores: np.ndarray
    topk: tuple[tuple[str, float], ...]
    label: str | None
    previous: str | None
    threshold: float

    @property
    def changed(self) -> bool:
        """The claimed label differs from the previous prediction's (a label change)."""
        return self.label != self.previous

    def claimed(self) -> list[dict]:
        """``[{"label", "score"}]`` of the top-k entries at or above the threshold (JSON form)."""
        return as_json_topk((name, score) for name, score in self.topk if score >= self.threshold)


class NonFiniteScores(ValueError):
    """The model produced NaN or infinite scores (broken weights, or overflow in low precision)."""


def check_finite(values: np.ndarray) -> None:
    bad = int(np.size(values) - np.isfinite(values).sum())
    if bad:
        raise NonFiniteScores(f"the model produced {bad} non-finite scores (NaN or inf) of {np.size(values)}; "
                              "check the weights, or try --precision fp32")


def probabilities(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Softmax over the last axis: logits ``(..., K)`` -> float32 probabilities ``(..., K)``;
    :class:`NonFiniteScores` if any logit is NaN or infinite."""
    logits = torch.as_tensor(logits).detach().float().cpu()
    check_finite(logits.numpy())
    return torch.softmax(logits, -1).numpy()


def claimed_label(topk: Sequence[tuple[str, float]], threshold: float) -> str | None:
    """The top-1 label of best-first ``topk`` if its score reaches ``threshold``, else None (nothing claimed)."""
    return topk[0][0] if topk and topk[0][1] >= threshold else None


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Class indices of the ``k`` best of ``scores`` ``(K,)``, best first (the lower index on a tie; all of
    them if ``k`` exceeds them)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"topk must be an integer >= 1, got {k!r}")
    check_finite(scores)
    return np.argsort(-scores, kind="stable")[:k]


def top_labels(scores: np.ndarray, labels: list[str] | None, k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` best ``(label, score)`` pairs of a score vector, best first."""
    return tuple((label_name(labels, int(i)), float(scores[i])) for i in top_indices(scores, k))


def as_json_topk(pairs) -> list[dict]:
    """``[(label, score)]`` -> ``[{"label", "score"}]`` as the JSON contracts write them."""
    return [{"label": name, "score": round(score, 6)} for name, score in pairs]


class PostProcessor:
    """Per-stream state: the last ``smoothing`` probability vectors and the claimed label."""

    def __init__(self, labels: list[str] | None, *, smoothing: int = 3, threshold: float = 0.0, topk: int = 5):
        if smoothing < 1:
            raise ValueError(f"smoothing must be >= 1 window, got {smoothing}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")  # more than the classes: all of them
        self.labels = labels
        self.threshold = threshold
        self.topk = topk
        self._recent: deque[np.ndarray] = deque(maxlen=smoothing)
        self._label: str | None = None

    def update(self, logits: torch.Tensor) -> Prediction:
        """Add the newest window's logits ``(K,)`` and return the smoothed prediction.

        Raises :class:`NonFiniteScores` (and keeps the earlier windows) for non-finite logits.
        """
        self._recent.append(probabilities(logits.flatten()))
        scores = np.mean(self._recent, axis=0).astype(np.float32)
        topk = top_labels(scores, self.labels, self.topk)
        label, previous = claimed_label(topk, self.threshold), self._label
        self._label = label
        return Prediction(scores=scores, topk=topk, label=label, previous=previous, threshold=self.threshold)

    def reset(self) -> None:
        """Forget the smoothing history (after a gap in the stream): the next window is scored
        alone. The claimed label stays, so the next label change is reported from it."""
        self._recent.clear()
