"""scripts/check_layers.py: the real tree passes; on small package trees it passes a clean tree and reports an upward
import, a module named in a string and a circle (a relative import included)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tdn.config import REPO_ROOT


def load_checker():
    """scripts/check_layers.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("check_layers", REPO_ROOT / "scripts" / "check_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def check_layers(monkeypatch, tmp_path):
    """The checker's module, looking at ``tmp_path`` instead of the repository."""
    module = load_checker()
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def test_the_project_imports_only_downwards_without_circles(capsys):
    """The real tree: tdn < pipelines < app < cli, imports point down, no circles."""
    assert load_checker().main() == 0, capsys.readouterr().out


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CLEAN = {
    "tdn/__init__.py": "",
    "tdn/video.py": "import os\n",
    "tdn/data.py": "from tdn import video\nfrom tdn.video import os\n",
    "pipelines/__init__.py": "",
    "pipelines/clip.py": "from tdn.data import video\n",
    "pipelines/service.py": "from .clip import video\n",
    "app/ui.py": "import pipelines.service\nimport tdn\n",
}


def test_a_clean_tree_passes(check_layers, tmp_path, capsys):
    write_tree(tmp_path, CLEAN)
    assert check_layers.main() == 0
    assert "7 modules in tdn, pipelines, app, cli: layers point down, no circles" in capsys.readouterr().out


def test_an_upward_import_inside_a_function_is_reported(check_layers, tmp_path, capsys):
    write_tree(tmp_path, {**CLEAN, "tdn/video.py": "def f():\n    from app.ui import pipelines\n"})
    assert check_layers.main() == 1
    assert "tdn.video (tdn) imports app.ui (app), a higher layer" in capsys.readouterr().out


def test_a_module_named_in_a_string_is_an_import(check_layers, tmp_path, capsys):
    write_tree(tmp_path, {**CLEAN, "tdn/cli.py": "import importlib\nimportlib.import_module('pipelines.clip')\n"})
    assert check_layers.main() == 1
    out = capsys.readouterr().out
    assert "tdn.cli (tdn) imports pipelines.clip (pipelines), a higher layer" in out
    assert "import circle" not in out


def test_a_circle_in_one_layer_is_reported(check_layers, tmp_path, capsys):
    write_tree(tmp_path, {**CLEAN, "pipelines/clip.py": "from . import service\n"})
    assert check_layers.main() == 1
    out = capsys.readouterr().out
    assert "import circle: pipelines.clip <-> pipelines.service" in out
    assert "higher layer" not in out


def test_graph_and_circles_directly(check_layers):
    graph = {"tdn.a": {"tdn.b"}, "tdn.b": {"tdn.c"}, "tdn.c": {"tdn.a"}, "tdn.d": {"tdn.a"}, "app.x": {"tdn.d"}}
    assert check_layers.circles(graph) == [["tdn.a", "tdn.b", "tdn.c"]]
    assert check_layers.upward_imports(graph) == []
    assert check_layers.upward_imports({"tdn.a": {"app.x"}, "app.x": set()}) == [
        "tdn.a (tdn) imports app.x (app), a higher layer"]
