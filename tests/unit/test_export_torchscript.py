"""TorchScript export: the traced model gives the eager model's logits."""
from __future__ import annotations

import pytest
import torch

from tdn.api import DEMO_WEIGHTS, load_model
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from cli.main import main as tdn_main
from tdn.export import example_input, export_torchscript, load_torchscript, max_logit_difference
from tdn.model import create_model


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("resnet18", num_segments=4, num_classes=5, variant="tdn")
    model.eval()
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    save_model(path, model, ModelMeta(labels=list("abcde"), input_size=64, resize_short=72, clip_seconds=1.0))
    return path


def test_export_matches_eager_and_keeps_meta(tiny_weights, tmp_path):
    model = load_model(tiny_weights)
    path = export_torchscript(model, tmp_path / "tiny.ts")
    exported, meta = load_torchscript(path)
    assert max_logit_difference(model, exported) <= 1e-4
    x = example_input(model, batch=3, seed=5)  # a batch size the trace did not see
    assert exported(x).shape == (3, 5)
    assert meta["labels"] == list("abcde") and meta["input_size"] == 64 and meta["num_segments"] == 4


@pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="bundled demo model not present")
def test_cli_exports_the_demo_model(tmp_path, capsys):
    out = tmp_path / "demo.ts"
    assert tdn_main(["export", "--out", str(out)]) == 0
    assert "max |logit difference|" in capsys.readouterr().out
    model = load_model(DEMO_WEIGHTS)
    exported, meta = load_torchscript(out)
    assert max_logit_difference(model, exported, batches=1) <= 1e-4
    assert meta["labels"] == model.meta.labels


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ts"):
        load_torchscript(tmp_path / "nope.ts")
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="junk.ts"):
        load_torchscript(junk)
