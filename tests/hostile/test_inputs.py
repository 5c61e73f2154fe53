"""Hostile inputs: bad configs, weights files and CLI flags give one clear error naming what
was wrong (the CLI: ``tdn CMD: error: ...``, exit 2, no traceback) or a correct result, and
leave nothing partial behind."""
from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from tdn.cli import main as tdn_main
from tdn.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, parse_override


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
    ("train.epochs", "0", "1 <= epochs <= 10000"),
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
