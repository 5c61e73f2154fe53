"""Weights files: the official TDN fixture, ImageNet initialisation, this project's format, bad files."""
import io

import pytest
import torch
import torchvision

from official_fixture import official_fixture  # noqa: F401 (pytest fixture)
from tdn.api import load_model
from tdn.checkpoint import (CheckpointError, OFFICIAL_SKIPPED_PREFIXES, build_from_file, inflate_difference_stem,
                            load_imagenet_init, remap_official, save_model)
from tdn.meta import ModelMeta
from tdn.model import create_model


@pytest.mark.parametrize("t", [8, 16])
@pytest.mark.parametrize("rewrite", [False, True], ids=["as-defined", "inference-form"])
def test_official_checkpoint_reproduces_reference_logits(official_fixture, t, rewrite):
    ref = official_fixture["reference"][f"T{t}"]
    model = load_model(official_fixture["checkpoint"], num_segments=t, rewrite=rewrite)
    assert model.cfg.layers == tuple(official_fixture["reference"]["layers"])
    assert model.cfg.num_classes == official_fixture["reference"]["num_class"]
    x = ref["input"].float()
    x = x.view(1, t, 5, 3, *x.shape[-2:])  # official (N, T*15, H, W) -> (N, T, 5, 3, H, W)
    with torch.no_grad():
        logits = model(x)
    assert (logits - ref["logits"]).abs().max().item() <= 1e-4


def test_every_official_key_is_used_or_deliberately_skipped(official_fixture):
    raw = torch.load(official_fixture["checkpoint"], weights_only=True)["state_dict"]
    remapped, skipped = remap_official(raw)
    assert len(remapped) + len(skipped) == len(raw) == 282
    assert skipped and all(k.startswith(OFFICIAL_SKIPPED_PREFIXES) for k in skipped)
    model = build_from_file(official_fixture["checkpoint"], num_segments=8)
    assert set(remapped) == set(model.state_dict())


def test_official_checkpoint_with_an_unknown_key_is_refused(official_fixture, tmp_path):
    data = torch.load(official_fixture["checkpoint"], weights_only=True)
    data["state_dict"]["module.base_model.layer2_bak.0.mse.extra.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pth.tar"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="mse.extra.weight"):
        load_model(path)


def test_project_format_round_trip(tmp_path):
    model = create_model("resnet18", num_segments=4, num_classes=3, variant="tdn")
    meta = ModelMeta(labels=["a", "b", "c"], input_size=96, resize_short=112, clip_seconds=2.0)
    path = save_model(tmp_path / "m.pt", model, meta)
    loaded = load_model(path, rewrite=False)
    assert loaded.cfg == model.cfg and loaded.meta.labels == ["a", "b", "c"] and loaded.meta.input_size == 96
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    half = load_model(save_model(tmp_path / "h.pt", model, meta, half=True), rewrite=False)
    assert half.state_dict()["fc.weight"].dtype == torch.float32
    with pytest.raises(ValueError, match="3 classes"):
        load_model(path, labels=["only", "two"])


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Ctrl-C or a full disk while a checkpoint is written (best.pt each epoch): the last good file stays,
    and no partial file is left, under its name or beside it."""
    model = create_model("resnet18", num_segments=4, num_classes=3, variant="tdn")
    path = save_model(tmp_path / "best.pt", model, ModelMeta(labels=["a", "b", "c"]))
    before = path.read_bytes()

    def interrupted(obj, f):
        with open(f, "wb") as out:
            out.write(before[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, model)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]
    monkeypatch.undo()
    assert load_model(path).meta.labels == ["a", "b", "c"]


def test_folded_model_cannot_be_saved(tmp_path):
    model = load_model(None, arch="resnet18", num_segments=4, num_classes=3)
    with pytest.raises(ValueError, match="folded"):
        save_model(tmp_path / "x.pt", model, ModelMeta())


def test_imagenet_init_fills_both_streams(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)

    model = create_model("resnet18", num_segments=4, num_classes=5, variant="tdn")
    untouched = load_imagenet_init(model, path)
    assert all(k.startswith("fc.") or k.endswith(".bias") or ".temporal." in k for k in untouched), untouched
    sd = model.state_dict()
    assert torch.equal(sd["stdm.layer1.0.conv1.weight"], tv.state_dict()["layer1.0.conv1.weight"])
    assert torch.equal(sd["stdm.conv.weight"], inflate_difference_stem(tv.conv1.weight.detach(), 12))
    assert sd["stdm.conv.weight"].shape == (64, 12, 7, 7)

    # With the RGB stream alone (TSN), each frame's pooled features are torchvision's.
    tsn = create_model("resnet18", num_segments=4, num_classes=5, variant="tsn")
    load_imagenet_init(tsn, path)
    tsn.eval()
    tv.eval()
    frames = torch.randn(4, 5, 3, 64, 64)
    with torch.no_grad():
        x = tsn.layer4(tsn.layer3(tsn.layer2(tsn.forward_segments(frames))))
        ours = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        theirs = torch.nn.Sequential(*list(tv.children())[:-1])(frames[:, 2]).flatten(1)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_imagenet_file_of_another_depth_is_refused(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_imagenet_init(create_model("resnet18", num_segments=4, num_classes=5), path)
    with pytest.raises(CheckpointError, match="ImageNet ResNet"):
        load_model(path)


class _Evil:
    def __reduce__(self):
        return (print, ("this ran code",))


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "text", "foreign", "malicious", "list"])
def test_bad_weights_files_give_clear_errors(tmp_path, kind, official_fixture):
    path = tmp_path / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = official_fixture["checkpoint"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "foreign":
        torch.save({"encoder.weight": torch.zeros(2)}, path)
    elif kind == "malicious":
        buf = io.BytesIO()
        torch.save({"state_dict": _Evil()}, buf)
        path.write_bytes(buf.getvalue())
    elif kind == "list":
        torch.save([torch.zeros(1)], path)
    expected = {"missing": FileNotFoundError}.get(kind, CheckpointError)
    with pytest.raises(expected) as info:
        load_model(path)
    assert str(path) in str(info.value)
    if kind == "malicious":
        assert "refused" in str(info.value)
    if kind == "foreign":
        assert "neither" in str(info.value)

