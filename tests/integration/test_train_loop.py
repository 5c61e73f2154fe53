"""End-to-end training on tiny synthetic clips: files written, exact resume, tdn eval, DDP replicas."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from tdn import synth
from tdn.api import load_model
from cli.main import main as tdn_main
from tdn.config import load_config
from tdn.data import read_list
from tdn.registry import ENGINES
from tdn.train import train

TINY = synth.ClipSpec(width=80, height=64, fps=25, seconds=0.8)  # 20 frames


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_synth")
    lists = synth.generate(root, {"train": 1, "val": 1}, seed=1, spec=TINY)
    return root, lists


def tiny_config(data, output, **extra):
    root, lists = data
    overrides = {"train.train_list": str(lists["train"]), "train.val_list": str(lists["val"]),
                 "train.output": str(output), "train.epochs": 2, "train.batch_size": 4, "train.workers": 0,
                 "train.lr": 0.01, "train.flip_swap": synth.FLIP_SWAP, "model.arch": "resnet18",
                 "model.num_segments": 4, "model.input_size": 64, "model.resize_short": 64, **extra}
    return load_config(None, overrides)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    return train(tiny_config(data, out), progress=False)


def test_training_writes_its_files(trained):
    out = trained.output
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["val_top1"]) <= 1.0 for r in rows)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 2 and saved["model"]["num_segments"] == 4
    model = load_model(out / "best.pt")
    assert model.meta.labels == list(synth.CLASSES)
    assert (model.meta.input_size, model.meta.resize_short) == (64, 64)
    assert model.meta.clip_seconds == pytest.approx(0.8)
    assert (model.cfg.num_segments, model.cfg.num_classes, model.cfg.variant) == (4, 9, "tdn")


@pytest.mark.slow
def test_resume_continues_exactly(data, trained, tmp_path):
    """Epoch 1, stop, resume for epoch 2: the same weights as two epochs in one go."""
    train(tiny_config(data, tmp_path), progress=False, stop_after=1)
    resumed = train(tiny_config(data, tmp_path, **{"train.resume": str(tmp_path / "last.pt")}), progress=False)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert len(list(csv.DictReader(open(tmp_path / "log.csv")))) == 2


def test_eval_cli_json(data, trained, capsys, tmp_path):
    root, lists = data
    code = tdn_main(["eval", "--weights", str(trained.output / "best.pt"), "--list", str(lists["val"]),
                     "--views", "10x3", "--json", "--set", "train.workers=0",
                     "--predictions", str(tmp_path / "out" / "predictions.csv")])
    assert code == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["count"] == 9 and result["views"] == "10x3"
    # what ran is part of the result: the auto engine depends on the machine (tdn/engine_choice.yaml)
    assert result["engine"] in ENGINES and result["precision"] in ("fp32", "bf16") and result["engine_choice"]
    assert f"tdn eval: engine {result['engine']}, {result['precision']} (" in captured.err
    confusion = torch.tensor(result["confusion"])
    assert confusion.shape == (9, 9) and int(confusion.sum()) == 9
    assert result["top1"] == pytest.approx(float(confusion.diag().sum()) / 9)
    assert result["top1"] <= result["top5"]
    assert result["labels"] == list(synth.CLASSES)
    # one row per clip of the list, in its order, adding up to the confusion matrix
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    listed = read_list(lists["val"], root=lists["val"].parent)  # as tdn eval reads it without --root
    assert [(r["clip"], int(r["label"])) for r in rows] == [(str(c.path), c.label) for c in listed]
    from_rows = torch.zeros(9, 9, dtype=torch.int64)
    for r in rows:
        from_rows[int(r["label"]), int(r["predicted"])] += 1
        assert r["correct"] == str(r["label"] == r["predicted"]) and r["error"] == ""
        assert r["predicted_name"] == synth.CLASSES[int(r["predicted"])] and 1 / 9 <= float(r["score"]) <= 1
    assert torch.equal(from_rows, confusion)


def test_train_cli_rejects_a_missing_list(tmp_path, capsys):
    assert tdn_main(["train", "--train-list", str(tmp_path / "nope.txt"), "--output", str(tmp_path)]) == 2
    assert "nope.txt" in capsys.readouterr().err


WORKER = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from tdn.config import load_config
    from tdn.train import train
    overrides = dict(arg.split("=", 1) for arg in sys.argv[2:])
    overrides = {k: (int(v) if v.isdigit() else v) for k, v in overrides.items()}
    result = train(load_config(None, overrides), progress=False)
    rank = dist.get_rank()
    torch.save({k: v for k, v in result.model.named_parameters()}, f"{sys.argv[1]}/params_{rank}.pt")
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_replicas_equal(data, tmp_path):
    root, lists = data
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    settings = {"train.train_list": lists["train"], "train.val_list": lists["val"], "train.output": tmp_path / "out",
                "train.epochs": 1, "train.batch_size": 2, "train.workers": 0, "model.arch": "resnet18",
                "model.num_segments": 4, "model.input_size": 64, "model.resize_short": 64, "model.device": "cpu"}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           str(script), str(tmp_path)] + [f"{k}={v}" for k, v in settings.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"params_{r}.pt", weights_only=True) for r in (0, 1))
    assert load_model(tmp_path / "out" / "best.pt").cfg.num_classes == 9  # rank 0 wrote a usable model
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "2 process(es)" in proc.stdout
    rows = list(csv.DictReader(open(tmp_path / "out" / "log.csv")))
    assert len(rows) == 1


def test_imagenet_initialisation_reaches_both_streams(data, tmp_path):
    """train.imagenet loads a torchvision ResNet file into the RGB stream and the S-TDM (before any step)."""
    import torchvision

    resnet = torchvision.models.resnet18(weights=None)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    settings = {"train.epochs": 0, "train.imagenet": str(tmp_path / "resnet18.pth")}
    result = train(tiny_config(data, tmp_path / "out", **settings), progress=False)
    model = result.model
    assert torch.equal(model.conv1.weight, resnet.conv1.weight)
    assert torch.equal(model.layer3[0].conv1.weight, resnet.layer3[0].conv1.weight)
    assert torch.equal(model.stdm.layer1[0].conv1.weight, resnet.layer1[0].conv1.weight)
