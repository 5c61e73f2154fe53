"""Files written whole or not at all: a write goes to a hidden partial file beside the target and is
renamed over it only when complete, so an interrupted or failed write (Ctrl-C, a full disk) leaves the
previous file as it was and no partial one under the real name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete (same folder and extension, hidden)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(partial)`` to :func:`partial_path`, then rename it to ``path`` (creating its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
