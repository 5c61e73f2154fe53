"""How confident the bundled demo model is when it is right and when it is wrong: the evidence
behind the app's starting threshold (``app.threshold``).

Renders held-out synthetic clips (``tdn synth``'s test split, seed 0, in memory), scores each
with the 1x1 test protocol (one window of T segments, centre crop: what one live window sees)
and prints the top-1 probability's percentiles for right and wrong answers, then, per candidate
threshold, the share of right answers kept and of wrong answers shown as "nothing above threshold".

    .venv/bin/python scripts/demo_scores.py --per-class 10
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from tdn.api import DEMO_WEIGHTS, load_model
from tdn.sampling import SEGMENT_LENGTH, clip_frame_indices
from tdn.synth import CLASSES, SPLITS, render_clip
from tdn.transforms import PreprocessSpec, SegmentTransform

CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=10, help="held-out clips per class (default: %(default)s)")
    args = parser.parse_args()
    model = load_model(DEMO_WEIGHTS, precision="fp32")
    transform = SegmentTransform(PreprocessSpec.from_meta(model.meta))
    t = model.cfg.num_segments
    right, wrong = [], []
    for n in range(args.per_class):
        for label in range(len(CLASSES)):
            frames = render_clip(np.random.default_rng([0, SPLITS.index("test"), label, n]), label)
            indices = clip_frame_indices(len(frames), t)  # T * L indices, segment by segment
            segments = [[frames[i] for i in indices[s * SEGMENT_LENGTH:(s + 1) * SEGMENT_LENGTH]] for s in range(t)]
            window = transform.segments(segments).unsqueeze(0)  # (T, L, 3, S, S) -> (1, T, L, 3, S, S)
            with torch.no_grad():
                probs = torch.softmax(model(window).float(), dim=1)[0]
            score, top = float(probs.max()), int(probs.argmax())
            (right if top == label else wrong).append(score)
    right_a, wrong_a = np.array(right), np.array(wrong)
    print(f"{len(right)} right, {len(wrong)} wrong of {len(right) + len(wrong)} held-out clips")
    for name, values in (("right", right_a), ("wrong", wrong_a)):
        if values.size:
            p = np.percentile(values, [10, 25, 50, 75, 90])
            print(f"top-1 probability when {name}: p10 {p[0]:.2f} p25 {p[1]:.2f} median {p[2]:.2f} "
                  f"p75 {p[3]:.2f} p90 {p[4]:.2f}")
    for threshold in CANDIDATES:
        kept = (right_a >= threshold).mean() if right_a.size else float("nan")
        flagged = (wrong_a < threshold).mean() if wrong_a.size else float("nan")
        print(f"threshold {threshold:.1f}: right answers claimed {kept:.0%}, wrong answers shown as uncertain "
              f"{flagged:.0%}")


if __name__ == "__main__":
    main()
