"""The shipped example clips (``examples/``, written by ``scripts/make_examples.py`` with the
project's own generator): offered in the Clip tab, and one played as a looping "demo stream"
camera in the Cameras tab. These paths come from the server, never from a browser."""
from __future__ import annotations

from pathlib import Path

from tdn.config import REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "examples"
DEMO_STREAM = EXAMPLES_DIR / "demo_stream.mp4"
DEMO_STREAM_NAME = "demo stream"


def example_clips(examples_dir: Path = EXAMPLES_DIR) -> list[Path]:
    """The example clips for the Clip tab (every ``*.mp4`` but the demo stream), by name."""
    return sorted(p for p in examples_dir.glob("*.mp4") if p.name != DEMO_STREAM.name)
