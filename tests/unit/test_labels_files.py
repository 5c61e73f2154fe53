"""The shipped label files: class counts, official order, and the left/right pairs that
the official Something-Something V1 training swaps under horizontal flip."""
from __future__ import annotations

import pytest

from tdn.config import REPO_ROOT
from tdn.labels import load_labels

LABELS_DIR = REPO_ROOT / "weights" / "labels"


@pytest.mark.parametrize(
    "name, count",
    [("kinetics400.txt", 400), ("something_something_v1.txt", 174), ("something_something_v2.txt", 174)],
)
def test_label_file_has_official_class_count_without_duplicates(name, count):
    labels = load_labels(LABELS_DIR / name)
    assert len(labels) == count
    assert len(set(labels)) == count
    # every line is a class: no comments or blank lines that would shift indices
    assert len((LABELS_DIR / name).read_text(encoding="utf-8").splitlines()) == count


def test_kinetics400_is_in_sorted_class_name_order():
    labels = load_labels(LABELS_DIR / "kinetics400.txt")
    assert labels == sorted(labels)
    assert labels[0] == "abseiling" and labels[-1] == "zumba"
    assert labels[labels.index("passing American football (in game)") + 1] == "passing American football (not in game)"


@pytest.mark.parametrize("name", ["something_something_v1.txt", "something_something_v2.txt"])
def test_something_something_flip_pairs_are_left_right_pairs(name):
    """TDN's training code swaps 86<->87, 93<->94, 166<->167 when it flips a clip."""
    labels = load_labels(LABELS_DIR / name)
    for a, b in [(86, 87), (93, 94), (166, 167)]:
        assert "left" in labels[a] and "right" in labels[b], (labels[a], labels[b])
        swapped = labels[b].replace("right", "X").replace("left", "Y")
        assert labels[a].replace("left", "X").replace("right", "Y") == swapped
    # category files sorted like the official list generation (Python's sorted, case-sensitive)
    assert labels == sorted(labels)
    assert labels[0] == "Approaching something with your camera"


def test_something_something_v1_and_v2_share_class_order():
    v1, v2 = (load_labels(LABELS_DIR / f"something_something_v{n}.txt") for n in (1, 2))
    assert v1 == v2
