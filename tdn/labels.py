"""Class-name files: one name per line, line i is class i (blank lines and '#' comments skipped)."""
from __future__ import annotations

from pathlib import Path


def load_labels(path: str | Path) -> list[str]:
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"label file {path} is a directory")
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"label file {path} is not UTF-8 text (byte {exc.start})") from exc
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ValueError(f"label file {path} has no class names")
    return names


def label_name(labels: list[str] | None, index: int) -> str:
    """Name of class ``index``, or ``"class <index>"`` when no labels are known."""
    return labels[index] if labels and 0 <= index < len(labels) else f"class {index}"
