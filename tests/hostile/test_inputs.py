"""Hostile inputs: bad configs, weights files and CLI flags give one clear error naming what
was wrong (the CLI: ``tdn CMD: error: ...``, exit 2, no traceback) or a correct result, and
leave nothing partial behind."""
from __future__ import annotations

import ast
import copy
import dataclasses
import io
import json
import random
import subprocess
import sys
import tarfile
import typing
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from media import moving_square_frames, write_video
from official_fixture import official_fixture  # noqa: F401 (pytest fixture)
from pipelines.postprocess import top_labels
from pipelines.types import SourceError
from tdn.api import load_model
from tdn.checkpoint import CheckpointError, build_from_file, save_model
from tdn.meta import ModelMeta
from tdn.video import ClipError
from cli.main import main as tdn_main
from tdn.config import DEFAULT_CONFIG_PATH, REPO_ROOT, Config, ConfigError, load_config, parse_override
from tdn.model import create_model


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = tdn_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, command: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith(f"tdn {command}: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


# -- configs ---------------------------------------------------------------------------------
def _numeric_fields():
    for section in dataclasses.fields(Config):
        cls = section.default_factory
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            base = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
            if base[0] in (int, float):
                yield f"{section.name}.{f.name}", base[0], f


def _interval(r) -> str:
    lo, hi = (str(int(x)) if float(x).is_integer() else str(x) for x in (r.lo, r.hi))
    return f"{'(' if r.lo_open else '['}{lo}, {hi}{')' if r.hi_open else ']'}"


def test_every_numeric_setting_declares_a_range_kept_in_config_yaml():
    documented = {}
    for line in DEFAULT_CONFIG_PATH.read_text().splitlines():
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            key, _, rest = line.strip().partition(":")
            documented[key] = rest
    sections = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert {f"{s}.{k}" for s, keys in sections.items() for k in keys} == {
        f"{s.name}.{f.name}" for s in dataclasses.fields(Config) for f in dataclasses.fields(s.default_factory)}
    for key, _, f in _numeric_fields():
        r = f.metadata.get("range")
        assert r is not None, f"{key} has no declared range"
        assert f"# {_interval(r)}" in documented[f.name], (key, _interval(r))


@pytest.mark.parametrize("key,value,allowed", [
    ("pipeline.capture_max_side", "-10", "32 <= capture_max_side <= 8192 (or null)"),
    ("model.num_segments", "10000", "1 <= num_segments <= 64"),
    ("model.num_segments", "0", "1 <= num_segments <= 64"),
    ("pipeline.window_seconds", "1e9", "0.1 <= window_seconds <= 60"),
    ("pipeline.threshold", "1.5", "0 <= threshold <= 1"),
    ("pipeline.topk", "0", "1 <= topk <= 1000"),
    ("pipeline.topk", "-2", "1 <= topk <= 1000"),
    ("app.port", "70000", "1 <= port <= 65535"),
    ("app.port", "0", "1 <= port <= 65535"),
    ("train.lr", "-0.1", "0 < lr <= 10"),
    ("train.epochs", "-1", "0 <= epochs <= 10000"),
    ("train.batch_size", "0", "1 <= batch_size <= 4096"),
    ("train.dropout", "1", "0 <= dropout < 1"),
    ("pipeline.buffer_max_frames", "0", "1 <= buffer_max_frames <= 4096"),
    ("pipeline.open_timeout_s", "0", "0 < open_timeout_s <= 3600"),
    ("pipeline.max_wait_ms", "-1", "0 <= max_wait_ms <= 10000"),
])
def test_out_of_range_numbers_name_the_key_value_and_range(key, value, allowed):
    with pytest.raises(ConfigError) as info:
        load_config(None, dict([parse_override(f"{key}={value}")]))
    message = str(info.value)
    assert f"'{key}'" in message and allowed in message
    assert float(message.rpartition("; got ")[2]) == float(value)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "nan", "inf", "1e400"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ConfigError, match=r"'pipeline\.window_seconds' must be a finite number"):
        load_config(None, {"pipeline.window_seconds": yaml.safe_load(value)})
    with pytest.raises(ConfigError, match=r"'model\.num_segments' must be a finite number"):
        load_config(None, {"model.num_segments": yaml.safe_load(value)})


def test_yaml_1_1_exponent_strings_are_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pipeline:\n  window_seconds: 3e0\n  max_wait_ms: 1e-3\ntrain:\n  lr: 1e-3\n  epochs: 1e2\n")
    assert isinstance(yaml.safe_load(path.read_text())["train"]["lr"], str)  # the YAML 1.1 quirk
    cfg = load_config(path)
    assert (cfg.pipeline.window_seconds, cfg.pipeline.max_wait_ms, cfg.train.lr, cfg.train.epochs) == (3.0, 0.001,
                                                                                                        0.001, 100)
    assert isinstance(cfg.train.epochs, int)
    with pytest.raises(ConfigError, match=r"'train\.epochs' must be an integer, got 2\.5"):
        load_config(None, {"train.epochs": "2.5e0"})


def test_settings_that_must_be_ordered():
    with pytest.raises(ConfigError, match=r"'pipeline\.window_seconds' \(10\) must not exceed "
                                          r"'pipeline\.buffer_seconds' \(6\)"):
        load_config(None, {"pipeline.window_seconds": 10})
    with pytest.raises(ConfigError, match=r"'pipeline\.reconnect_initial_s' \(9\) must not exceed"):
        load_config(None, {"pipeline.reconnect_initial_s": 9})


def test_non_utf8_config_names_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model:\n  labels: caf\xe9.txt\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path}: not UTF-8 text \(byte 20"):
        load_config(path)
    code, _, err = run_cli(capsys, "info", "--config", str(path))
    assert_user_error(code, err, "info", str(path), "not UTF-8")


def test_bad_yaml_in_a_set_override_names_the_key(capsys):
    code, _, err = run_cli(capsys, "info", "--set", "model.arch=[")
    assert_user_error(code, err, "info", "--set model.arch", "not valid YAML")


def test_config_that_is_a_directory_or_unreadable(tmp_path, capsys):
    code, _, err = run_cli(capsys, "info", "--config", str(tmp_path))
    assert_user_error(code, err, "info", f"{tmp_path} is a directory")


# -- weights files ---------------------------------------------------------------------------
LABELS = ["left", "right", "still"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real tiny TDN-R18 (T=4, 3 classes, 64 px) in this project's format: its path and its dict."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_segments=4, num_classes=len(LABELS)).eval()
    path = save_model(tmp_path_factory.mktemp("weights") / "tiny.pt", model,
                      ModelMeta(labels=LABELS, input_size=64, resize_short=72), half=True)
    return path, torch.load(path, weights_only=True)


def _save_variant(tmp_path, data: dict, **changes) -> Path:
    """``data`` with ``changes`` ({"meta.input_size": 0, ...}) applied, saved to a new file."""
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        data[section][key] = value
    path = tmp_path / "variant.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_file_and_tensors(tiny, tmp_path, bad):
    data = copy.deepcopy(tiny[1])
    data["state_dict"]["fc.weight"][1, 2] = bad
    data["state_dict"]["layer2.0.bn1.running_var"][0] = bad
    path = tmp_path / "nan.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and "2 tensors hold NaN or infinite values" in message
    assert "fc.weight" in message and "layer2.0.bn1.running_var" in message


def test_official_checkpoint_with_nan_is_refused(official_fixture, tmp_path):
    data = torch.load(official_fixture["checkpoint"], weights_only=True)
    data["state_dict"]["module.new_fc.weight"][0, 0] = float("nan")
    path = tmp_path / "official_nan.pth.tar"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=rf"{path}: 1 tensors hold NaN or infinite values: module.new_fc.weight"):
        load_model(path)


def test_stored_labels_must_match_the_classes(tiny, tmp_path):
    path = _save_variant(tmp_path, tiny[1], **{"meta.labels": ["a", "b"]})
    with pytest.raises(CheckpointError, match=rf"{path}: stores 2 labels but the model has 3 classes"):
        load_model(path)


@pytest.mark.parametrize("change,message", [
    ({"meta.input_size": 0}, "input_size must be an integer with 32 <= input_size <= 1024, got 0"),
    ({"meta.input_size": 64.5}, "input_size must be an integer with 32 <= input_size <= 1024, got 64.5"),
    ({"meta.resize_short": 48}, "resize_short must be an integer with 64 <= resize_short <= 2048, got 48"),
    ({"meta.mean": [0.5, 0.5]}, "mean must be 3 numbers (R, G, B), got [0.5, 0.5]"),
    ({"meta.std": [0.2, 0.0, 0.2]}, "std must be a number with 0 < std <= 1000, got 0.0"),
    ({"meta.std": [0.2, float("nan"), 0.2]}, "std must be a number with 0 < std <= 1000, got nan"),
    ({"meta.labels": "left"}, "stored labels must be a list of non-empty names"),
    ({"meta.clip_seconds": -1.0}, "clip_seconds must be a number with 0 < clip_seconds <= 3600, got -1.0"),
    ({"meta.colour": "rgb"}, "unknown meta fields in file: colour"),
    ({"config.num_segments": -4}, "num_segments must be an integer with 1 <= num_segments <= 64, got -4"),
    ({"config.num_segments": 10000}, "num_segments must be an integer with 1 <= num_segments <= 64, got 10000"),
    ({"config.num_classes": 0}, "num_classes must be an integer with 1 <= num_classes <= 100000, got 0"),
    ({"config.arch": "resnet9"}, "invalid model config in file: unknown arch 'resnet9'"),
    ({"config.layers": [2, 2, 2]}, "stored layers must be 4 block counts, got [2, 2, 2]"),
    ({"config.layers": [2, 2, 2, 10**9]}, "layers must be an integer with 1 <= layers <= 64, got 1000000000"),
    ({"config.segment_length": 1}, "segment_length must be an integer with 2 <= segment_length <= 16, got 1"),
])
def test_nonsense_stored_config_and_meta_are_refused_naming_the_field(tiny, tmp_path, change, message):
    path = _save_variant(tmp_path, tiny[1], **change)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)


def test_state_dict_entries_that_are_not_tensors(tiny, tmp_path):
    data = copy.deepcopy(tiny[1])
    data["state_dict"]["fc.bias"] = [0.0, 0.0, 0.0]
    path = tmp_path / "list.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=rf"{path}: 1 state dict entries are not named tensors: fc.bias"):
        load_model(path)


def _fuzz_files(tmp_path, tiny_bytes: bytes, count: int):
    """Seeded hostile files: random bytes, mutated/truncated small checkpoints (zip and legacy),
    pickle garbage, zips and tars that are not torch archives."""
    rng = random.Random(1234)
    small = io.BytesIO()
    torch.save({"format": "tdn-live", "version": 1, "config": {"arch": "resnet18", "num_classes": 3},
                "meta": {"labels": LABELS}, "state_dict": {"fc.weight": torch.randn(3, 8)}}, small)
    legacy = io.BytesIO()
    torch.save({"fc.weight": torch.randn(3, 8)}, legacy, _use_new_zipfile_serialization=False)
    bases = [small.getvalue(), legacy.getvalue()]
    for i in range(count):
        kind = i % 7
        base = bases[i % 2]
        if kind == 0:
            data = rng.randbytes(rng.randint(1, 4096))
        elif kind in (1, 2):  # a few bytes overwritten anywhere
            b = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            data = bytes(b)
        elif kind == 3:
            data = base[:rng.randrange(1, len(base))]
        elif kind == 4:
            data = b"\x80\x02" + rng.randbytes(rng.randint(1, 300))
        elif kind == 5:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr(rng.choice(["archive/data.pkl", "data.pkl", "x/y"]), rng.randbytes(64))
                if rng.random() < 0.5:
                    z.writestr("archive/version", b"3\n")
            data = buf.getvalue()
        else:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                info = tarfile.TarInfo(rng.choice(["storages", "tensors", "pickle", "sys_info"]))
                payload = rng.randbytes(128)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            data = buf.getvalue()
        path = tmp_path / f"fuzz{i}.pt"
        path.write_bytes(data)
        yield kind, path
    real = bytearray(tiny_bytes)  # the real checkpoint: its pickle (first KB) flipped, and truncated
    for i in range(6):
        b = bytearray(real)
        b[rng.randrange(40, 1200)] ^= 0xFF
        path = tmp_path / f"flipped{i}.pt"
        path.write_bytes(bytes(b))
        yield "flipped", path
    for i, cut in enumerate((100, len(real) // 3, len(real) - 10)):
        path = tmp_path / f"cut{i}.pt"
        path.write_bytes(bytes(real[:cut]))
        yield "truncated", path


def test_fuzzed_weights_files_always_raise_checkpoint_error(tiny, tmp_path):
    outcomes = {}
    for kind, path in _fuzz_files(tmp_path, tiny[0].read_bytes(), 300):
        try:
            build_from_file(path, num_segments=4)
            outcome = "loaded"
        except CheckpointError as exc:
            assert str(path) in str(exc), str(exc)
            outcome = "CheckpointError"
        except Exception as exc:  # noqa: BLE001 - what this test is about
            pytest.fail(f"{path} ({kind}): {type(exc).__name__}: {exc}")
        if kind not in ("flipped", 1, 2):  # a flipped byte may land in a tensor's data: still a checkpoint
            assert outcome == "CheckpointError", (kind, path)
        outcomes[kind] = outcomes.get(kind, 0) + 1
        path.unlink()
    assert outcomes["truncated"] == 3 and sum(outcomes.values()) == 309


def test_a_directory_as_weights(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", "--weights", str(tmp_path))
    assert_user_error(code, err, "export", f"{tmp_path} is a directory, not a weights file")


def test_random_bytes_as_weights_in_export_and_predict(tmp_path, capsys):
    path = tmp_path / "random.pt"
    path.write_bytes(random.Random(7).randbytes(2000))
    out = tmp_path / "out.ts"
    code, _, err = run_cli(capsys, "export", "--weights", str(path), "--out", str(out))
    assert_user_error(code, err, "export", str(path), "is not a PyTorch checkpoint")
    assert list(tmp_path.iterdir()) == [path]
    proc = subprocess.run([sys.executable, "-m", "cli", "predict", "clip.mp4", "--weights", str(path)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"tdn predict: error: {path} is not a PyTorch checkpoint")


def test_label_file_with_the_wrong_count(tiny, tmp_path, capsys):
    labels = tmp_path / "two.txt"
    labels.write_text("a\nb\n")
    code, _, err = run_cli(capsys, "predict", "clip.mp4", "--weights", str(tiny[0]), "--labels", str(labels))
    assert_user_error(code, err, "predict", f"label file {labels} has 2 names", f"({tiny[0]}) has 3 classes")


def test_label_file_not_utf8(tiny, tmp_path):
    labels = tmp_path / "latin1.txt"
    labels.write_bytes("caf\xe9\nb\nc\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"label file {labels} is not UTF-8 text \(byte 3\)"):
        load_model(tiny[0], labels=labels)


# -- CLI flags and run-time output -----------------------------------------------------------
FAST = ["--set", "pipeline.window_seconds=1.0", "--set", "pipeline.max_wait_ms=0", "--precision", "fp32"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(write_video(tmp_path_factory.mktemp("clips") / "a.mp4", moving_square_frames(30, width=96, height=72)))


@pytest.fixture(scope="module")
def overflowing(tiny, tmp_path_factory):
    """Finite weights whose logits overflow to inf: the model's output is not finite at run time."""
    data = copy.deepcopy(tiny[1])
    data["state_dict"]["fc.weight"] = torch.full((3, 512), 3e38)
    path = tmp_path_factory.mktemp("weights") / "overflow.pt"
    torch.save(data, path)
    return str(path)


def _strict_json_lines(out: str) -> list[dict]:
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    return [json.loads(line, parse_constant=refuse) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("flags,needle", [
    (["--topk", "0"], "'pipeline.topk' must satisfy 1 <= topk <= 1000; got 0"),
    (["--topk", "-2"], "'pipeline.topk' must satisfy 1 <= topk <= 1000; got -2"),
    (["--segments", "10000"], "'model.num_segments' must satisfy 1 <= num_segments <= 64; got 10000"),
    (["--set", "pipeline.capture_max_side=-10"], "'pipeline.capture_max_side' must satisfy 32 <= capture_max_side"),
])
def test_bad_flags_exit_2_before_any_work(tiny, clip, capsys, flags, needle):
    code, out, err = run_cli(capsys, "predict", clip, "--json", "--weights", str(tiny[0]), *flags)
    assert_user_error(code, err, "predict", needle)
    assert out == ""


def test_topk_above_the_class_count_means_every_class(tiny, clip, capsys):
    code, out, err = run_cli(capsys, "predict", clip, "--json", "--weights", str(tiny[0]), "--topk", "50", *FAST)
    assert code == 0, err
    [record] = _strict_json_lines(out)
    assert sorted(e["label"] for e in record["topk"]) == sorted(LABELS)
    assert abs(sum(e["score"] for e in record["topk"]) - 1) < 1e-4


def test_top_labels_refuses_a_non_positive_k():
    scores = np.full(9, 1 / 9, dtype=np.float32)
    assert len(top_labels(scores, None, 100)) == 9
    for k in (0, -2):
        with pytest.raises(ValueError, match=f"topk must be an integer >= 1, got {k}"):
            top_labels(scores, None, k)


def test_non_finite_model_output_in_predict_is_an_error_record(overflowing, clip, capsys):
    code, out, err = run_cli(capsys, "predict", clip, "--json", "--windows", "--weights", overflowing, *FAST)
    assert code == 1
    [record] = _strict_json_lines(out)
    assert record["source"] == clip and "non-finite scores (NaN or inf)" in record["error"]


def test_non_finite_model_output_in_stream_is_an_error_event(overflowing, clip, capsys):
    code, out, _ = run_cli(capsys, "stream", "--source", clip, "--no-realtime", "--json", "--weights", overflowing,
                           *FAST)
    assert code == 1
    events = _strict_json_lines(out)
    errors = [e for e in events if e["event"] == "error"]
    assert errors and all("non-finite scores" in e["detail"] and e["stream"] == clip for e in errors)
    assert not [e for e in events if e["event"] == "prediction"]


def test_every_json_writer_refuses_nan():
    """Strict JSON everywhere: each json.dump(s) call in the project passes allow_nan=False."""
    lax = []
    for folder in ("tdn", "pipelines", "app", "cli", "scripts", "benchmarks"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("dump", "dumps") and getattr(node.func.value, "id", "") == "json"
                        and not any(k.arg == "allow_nan" and getattr(k.value, "value", True) is False
                                    for k in node.keywords)):
                    lax.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not lax, lax


@pytest.mark.parametrize("target,needle", [
    ("{tmp}", "is a directory; give a file name"),
    ("{tmp}/no/such/folder/out.mp4", "does not exist"),
    ("{tmp}/out.txt", "cannot write mp4v video there"),
])
def test_write_video_to_an_unwritable_path_fails_before_starting(tiny, clip, tmp_path, capsys, target, needle):
    out_path = target.format(tmp=tmp_path)
    code, out, err = run_cli(capsys, "stream", "--source", clip, "--json", "--weights", str(tiny[0]),
                             "--write-video", out_path, *FAST)
    assert_user_error(code, err, "stream", f"--write-video {out_path}", needle)
    assert out == "" and list(tmp_path.iterdir()) == []


def test_write_video_leaves_only_the_complete_file(tiny, clip, tmp_path, capsys):
    video = tmp_path / "annotated.mp4"
    code, _, err = run_cli(capsys, "stream", "--source", clip, "--no-realtime", "--json", "--weights",
                           str(tiny[0]), "--write-video", str(video), *FAST)
    assert code == 0, err
    assert f"wrote 30 frames of {clip} to {video}" in err
    assert list(tmp_path.iterdir()) == [video]
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    capture.release()


def test_export_to_a_directory_leaves_nothing(tiny, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", "--weights", str(tiny[0]), "--out", str(tmp_path))
    assert_user_error(code, err, "export", f"export output {tmp_path} is a directory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [
    CheckpointError("w.pt is not a PyTorch checkpoint"), ClipError("c.mp4 has no decodable video frames"),
    SourceError("rtsp://***@cam: cannot open"), ConfigError("config key 'x.y' must be ..."),
    PermissionError(13, "Permission denied", "/root/w.pt"), IsADirectoryError(21, "Is a directory", "/tmp"),
    FileNotFoundError(2, "No such file or directory", "gone.pt"),
])
def test_user_errors_exit_2_without_traceback(monkeypatch, capsys, exc):
    def fail(args):
        raise exc
    monkeypatch.setattr("cli.info.main", fail)
    code, _, err = run_cli(capsys, "info")
    assert_user_error(code, err, "info", str(exc))


def test_bugs_keep_their_traceback(monkeypatch):
    def bug(args):
        raise KeyError("a bug")
    monkeypatch.setattr("cli.info.main", bug)
    with pytest.raises(KeyError, match="a bug"):
        tdn_main(["info"])


@pytest.mark.parametrize("argv,needle", [
    (["info", "--size", "100000"], "argument --size: must satisfy 32 <= value <= 1024, got 100000"),
    (["info", "--size", "0"], "argument --size: must satisfy 32 <= value <= 1024, got 0"),
    (["bench", "model", "--segments", "10000"], "argument --segments: must satisfy 1 <= value <= 64, got 10000"),
    (["stream", "--source", "x.mp4", "--duration", "nan"], "argument --duration: must satisfy 0 < value"),
    (["eval", "--list", "x.txt", "--batch-size", "0"], "argument --batch-size: must satisfy 1 <= value <= 4096"),
    (["synth", "--fps", "0"], "argument --fps: must satisfy 1 <= value <= 240, got 0"),
])
def test_numeric_flags_outside_config_are_range_checked(capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        tdn_main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"tdn {argv[0]}: error: {needle}" in err and "Traceback" not in err
