"""What a new user sees first, without a browser: the intro and card from the loaded model, one
weights entry per file, T fixed or changeable by file kind (with the reason when a file is
unreadable), and the shipped example clips."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.examples import DEMO_STREAM, EXAMPLES_DIR, example_clips
from app.tabs import model as panel
from official_fixture import official_fixture  # noqa: F401 (pytest fixture)
from tdn.checkpoint import CheckpointError, save_model, stored_segments
from tdn.meta import ModelMeta
from tdn.model import create_model
from tdn.synth import CLASSES
from tdn.video import probe_video


def stand_in_host(source: str, labels: list[str] | None, num_segments: int = 8) -> SimpleNamespace:
    """What the panel reads of a :class:`~app.sessions.ModelHost`: its model's cfg and meta."""
    classes = len(labels) if labels else 5
    model = SimpleNamespace(cfg=SimpleNamespace(num_classes=classes, num_segments=num_segments),
                            meta=ModelMeta(labels=labels, source=source))
    return SimpleNamespace(service=SimpleNamespace(model=model))


def test_intro_names_the_classes_and_the_cards_sentence_and_about_has_the_card(tmp_path):
    (tmp_path / "CARD.md").write_text("# Toy\n\nIt recognises 3 toy motions - not people. More text.\n")
    host = stand_in_host(str(tmp_path / "toy.pt"), ["up", "down", "still"])
    intro = panel.intro(host)
    assert "recognises 3 classes" in intro and "*up*, *down*, *still*" in intro
    assert "It recognises 3 toy motions - not people." in intro
    about = panel.about(host)
    assert "`up`, `down`, `still`" in about and "# Toy" in about


def test_intro_of_a_large_model_names_a_few_classes_and_says_how_many_more(tmp_path):
    host = stand_in_host(str(tmp_path / "k400.pth"), [f"class {i}" for i in range(400)])
    intro = panel.intro(host)
    assert "recognises 400 classes" in intro and "*class 11*" in intro and "*class 12*" not in intro
    assert f"and {400 - panel.INTRO_CLASSES} more" in intro
    assert "No model card" in panel.about(host)
    unnamed = panel.intro(stand_in_host("", None))  # no labels: indices, as the views show them
    assert "recognises 5 classes" in unnamed


def test_bundled_demo_intro_says_what_its_classes_are():
    from tdn.api import DEMO_WEIGHTS

    if not DEMO_WEIGHTS.is_file():
        pytest.skip("the bundled demo model is not there")
    host = stand_in_host(str(DEMO_WEIGHTS), list(CLASSES))
    assert "not human actions" in panel.intro(host)


def test_stored_segments_tells_our_files_from_official_ones(tmp_path, official_fixture):  # noqa: F811
    ours = save_model(tmp_path / "m.pt", create_model("resnet18", num_segments=4, num_classes=3), ModelMeta())
    assert stored_segments(ours) == 4
    assert stored_segments(official_fixture["checkpoint"]) is None
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pt"):
        stored_segments(tmp_path / "broken.pt")


def test_segments_box_is_fixed_for_our_files_changeable_for_official_and_says_why_a_file_fails(
        tmp_path, official_fixture):  # noqa: F811
    ours = save_model(tmp_path / "m.pt", create_model("resnet18", num_segments=4, num_classes=3), ModelMeta())
    assert panel.segments_state(panel.KEEP_CHOICE, stand_in_host(str(ours), None, 4)) == (
        4, False, "Segments T (stored in this file)", "")
    value, changeable, label, message = panel.segments_state(
        panel.KEEP_CHOICE, stand_in_host(str(official_fixture["checkpoint"]), None, 16))
    assert (value, changeable, message) == (16, True, "") and "official" in label
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    value, changeable, _, message = panel.segments_state(panel.KEEP_CHOICE, stand_in_host(str(tmp_path / "broken.pt"),
                                                                                         None))
    assert not changeable and "broken.pt" in message and message.startswith("⚠️")
    _, changeable, _, message = panel.segments_state("../outside.pt", stand_in_host(str(ours), None))
    assert not changeable and "outside" in message


def test_weights_entries_list_each_file_once_and_a_file_from_elsewhere_as_loaded_at_start(tmp_path):
    from app.inputs import weights_choices
    from tdn.api import DEMO_WEIGHTS

    files = weights_choices()
    entries, current = panel.weights_entries(stand_in_host(str(DEMO_WEIGHTS), None))
    assert [value for _, value in entries] == files and current in files  # one entry per file, no aliases
    assert sum("bundled demo" in label for label, _ in entries) == (1 if DEMO_WEIGHTS.is_file() else 0)
    entries, current = panel.weights_entries(stand_in_host(str(tmp_path / "mine.pt"), None))
    assert current == panel.KEEP_CHOICE and entries[0] == ("mine.pt (loaded at start)", panel.KEEP_CHOICE)
    assert [value for _, value in entries[1:]] == files


def test_shipped_examples_are_small_synthetic_clips_of_the_demo_models_size():
    clips = example_clips()
    assert [p.name for p in clips] == ["approaching.mp4", "moving_right.mp4", "rotating_clockwise.mp4"]
    assert DEMO_STREAM.is_file() and DEMO_STREAM not in clips
    assert sum(p.stat().st_size for p in EXAMPLES_DIR.iterdir()) < 1024 * 1024
    for path in [*clips, DEMO_STREAM]:
        info = probe_video(path)
        assert info.size == (120, 160) and info.fps == 25 and info.declared >= 100, (path.name, info)
    assert Path(EXAMPLES_DIR).parent.joinpath("scripts", "make_examples.py").is_file()
