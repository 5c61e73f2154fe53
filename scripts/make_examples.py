"""Write the app's example clips, ``examples/*.mp4``, with the project's own generator
(:func:`tdn.synth.render_clip`): held-out draws (not in the demo model's training split) of a
few motions the demo model knows, 160x120 at 25 fps, the size it was trained on.

    .venv/bin/python scripts/make_examples.py        # rewrites examples/ (deterministic)

The Clip tab offers them as examples; the Cameras tab's "demo stream" plays
``demo_stream.mp4`` as a looping camera.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tdn.config import REPO_ROOT
from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip
from tdn.video import write_video

EXAMPLES_DIR = REPO_ROOT / "examples"
SEED = 7  # not the training seed (0): these clips are new to the model
EXAMPLES = {  # file stem -> (class, seconds)
    "moving_right": ("moving right", 4.0),
    "rotating_clockwise": ("rotating clockwise", 4.0),
    "approaching": ("approaching", 4.0),
    "demo_stream": ("moving left", 6.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR, help="output folder (default: examples/)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for n, (stem, (name, seconds)) in enumerate(EXAMPLES.items()):
        # clean 25 fps clips: each class as plainly as the generator shows it
        spec = ClipSpec(seconds=seconds, fps=25, webcam=False, pace_range=FULL_PACE)
        frames = render_clip(np.random.default_rng([SEED, n]), CLASSES.index(name), spec)
        path = args.out / f"{stem}.mp4"
        write_video(path, frames, spec.fps)
        print(f"{path}: {name}, {seconds:g} s, {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
