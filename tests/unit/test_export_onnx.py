"""ONNX export: ONNX Runtime gives the eager model's outputs (<= 1e-4 of the logit range) for every
arch and variant at T = 8 and 16; both streaming halves; names, dynamic batch and metadata."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnxruntime  # noqa: E402

from cli.main import main as tdn_main  # noqa: E402
from random_weights import random_weights, relative_error  # noqa: E402
from tdn.api import DEMO_WEIGHTS, load_model  # noqa: E402
from tdn.export import export_onnx, onnx_example, onnx_max_difference, onnx_meta  # noqa: E402
from tdn.registry import ARCHS, VARIANTS  # noqa: E402

TOLERANCE = 1e-4


def _onnx_vs_eager(weights, tmp_path, part="model", batch=3):
    model = load_model(weights)
    path = export_onnx(model, tmp_path / f"{part}.onnx", part)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = onnx_example(model, part, batch=batch)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x) if part == "model" else None
    return model, path, session, x, got, expected


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_matches_eager(arch, tmp_path):
    """Real block counts per arch, T = 8, 64 px."""
    weights = random_weights(tmp_path / "w.pt", arch=arch)
    _, _, _, _, got, expected = _onnx_vs_eager(weights, tmp_path)
    assert relative_error(torch.from_numpy(got[0]), expected) <= TOLERANCE


@pytest.mark.parametrize("num_segments", [8, 16])
@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])  # the two block types
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_matches_eager(variant, arch, num_segments, tmp_path):
    """One block per stage (every module of the variant, quickly), T = 8 and 16."""
    weights = random_weights(tmp_path / "w.pt", arch=arch, variant=variant, num_segments=num_segments,
                             layers=(1, 1, 1, 1))
    _, _, _, _, got, expected = _onnx_vs_eager(weights, tmp_path)
    assert relative_error(torch.from_numpy(got[0]), expected) <= TOLERANCE


def test_halves_match_eager_and_compose_to_the_model(tmp_path):
    weights = random_weights(tmp_path / "w.pt", arch="resnet18", variant="tdn")
    model = load_model(weights)
    window = onnx_example(model, "model", batch=2)  # (2, T, L, 3, S, S)
    sessions = {part: onnxruntime.InferenceSession(str(export_onnx(model, tmp_path / f"{part}.onnx", part)),
                                                   providers=["CPUExecutionProvider"])
                for part in ("segments", "temporal")}
    features, response = sessions["segments"].run(None, {"segments": window.flatten(0, 1).numpy()})
    with torch.no_grad():
        eager_features, eager_response = model.forward_segments_with_response(window.flatten(0, 1))
        expected = model(window)
    assert np.abs(features - eager_features.numpy()).max() <= TOLERANCE * float(eager_features.abs().max())
    assert np.abs(response - eager_response.numpy()).max() <= TOLERANCE * float(eager_response.abs().max())
    logits = sessions["temporal"].run(None, {"features": features.reshape(2, 8, *features.shape[1:])})[0]
    assert relative_error(torch.from_numpy(logits), expected) <= TOLERANCE


def test_files_are_self_describing_with_named_io_and_dynamic_batch(tmp_path):
    weights = random_weights(tmp_path / "w.pt", arch="resnet18", variant="tsn", num_segments=16)
    model = load_model(weights)
    for part, inputs, outputs in (("model", ["window"], ["logits"]), ("segments", ["segments"], ["features"]),
                                  ("temporal", ["features"], ["logits"])):  # tsn: no S-TDM, no response
        path = export_onnx(model, tmp_path / f"{part}.onnx", part)
        meta = onnx_meta(path)
        assert (meta["part"], meta["inputs"], meta["outputs"]) == (part, inputs, outputs)
        assert meta["labels"] == model.meta.labels and meta["input_size"] == 64 and meta["num_segments"] == 16
        assert list(meta["mean"]) == list(model.meta.mean) and list(meta["std"]) == list(model.meta.std)
        assert (meta["arch"], meta["variant"], meta["num_classes"]) == ("resnet18", "tsn", 6)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == inputs
        assert [o.name for o in session.get_outputs()] == outputs
        assert session.get_inputs()[0].shape[0] == "batch"
        assert onnx_max_difference(model, path, batch=5) <= TOLERANCE * 10  # a batch size the export did not see


def test_export_refuses_what_it_cannot_export_exactly(tmp_path):
    weights = random_weights(tmp_path / "w.pt")
    with pytest.raises(ValueError, match="float32"):
        export_onnx(load_model(weights, precision="bf16"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="unknown ONNX part 'head'"):
        export_onnx(load_model(weights), tmp_path / "m.onnx", "head")
    with pytest.raises(ValueError, match="is a directory"):
        export_onnx(load_model(weights), tmp_path)


def test_onnx_meta_names_a_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        onnx_meta(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00 not onnx at all")
    with pytest.raises(ValueError, match="junk.onnx"):
        onnx_meta(junk)


@pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="bundled demo model not present")
def test_cli_exports_the_demo_model_to_onnx(tmp_path, capsys):
    out = tmp_path / "demo.onnx"
    assert tdn_main(["export", "--format", "onnx", "--out", str(out)]) == 0
    assert "ONNX Runtime vs eager" in capsys.readouterr().out
    model = load_model(DEMO_WEIGHTS)
    assert onnx_meta(out)["labels"] == model.meta.labels
    assert onnx_max_difference(model, out) <= TOLERANCE * 10
    assert tdn_main(["export", "--format", "onnx", "--precision", "bf16", "--out", str(out)]) == 2
    assert "float32" in capsys.readouterr().err


@pytest.mark.slow
def test_r50_at_224_matches_eager(tmp_path):
    weights = random_weights(tmp_path / "w.pt", arch="resnet50", size=224, classes=400)
    _, _, _, _, got, expected = _onnx_vs_eager(weights, tmp_path, batch=1)
    assert relative_error(torch.from_numpy(got[0]), expected) <= TOLERANCE
