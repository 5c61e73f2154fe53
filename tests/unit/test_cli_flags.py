"""The command line's flags come from the typed config: declared once on a field, generated with
the field's type and choices (from tdn.registry), and mapped to the field's key; the CLI stays light."""
from __future__ import annotations

import argparse
import importlib

import pytest

from cli.main import COMMANDS, main as tdn_main
from cli.options import add_config_arguments, config_from_args
from tdn import registry
from tdn.config import SETTINGS


def command_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tdn {command}")
    add_config_arguments(parser)
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    return parser


def parser_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's actions and those of its subcommands (``tdn cluster up``...)."""
    found = []
    for action in parser._actions:
        found.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += parser_actions(sub)
    return found


def test_each_setting_declares_a_flag_of_its_own():
    flags = [s.flag for s in SETTINGS.values() if s.flag]
    assert len(flags) == len(set(flags))
    assert all(s.help for s in SETTINGS.values() if s.flag)


def test_choices_come_from_the_registry():
    assert SETTINGS["model.arch"].choices == registry.ARCHS
    assert SETTINGS["model.variant"].choices == registry.VARIANTS
    assert SETTINGS["model.precision"].choices == ("auto", *registry.PRECISIONS)
    assert SETTINGS["model.device"].choices == registry.DEVICES
    assert SETTINGS["pipeline.backend"].choices == registry.BACKENDS


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_setting_flag_is_generated_from_its_field(command):
    actions = [a for a in parser_actions(command_parser(command)) if a.dest in SETTINGS]
    assert actions or command in ("bench", "synth")
    for action in actions:
        s = SETTINGS[action.dest]
        assert action.default is None  # not given: the config's value
        if s.type is bool:
            assert action.const is (not s.default) and action.option_strings == [s.flag]
            continue
        assert action.type is s.type and action.choices == (s.choices or None)
        assert action.option_strings == ([s.flag] if (command, action.dest) != ("eval", "train.val_list") else ["--list"])
        if s.range is not None:
            assert s.range.describe(s.name) in action.help


def test_flags_map_to_their_keys_over_set_and_the_file():
    parser = command_parser("predict")
    args = parser.parse_args(["c.mp4", "--topk", "3", "--precision", "bf16", "--segments", "16",
                              "--set", "pipeline.topk=7", "--set", "pipeline.threshold=0.5"])
    cfg = config_from_args(args)
    assert (cfg.pipeline.topk, cfg.model.precision, cfg.model.num_segments) == (3, "bf16", 16)
    assert cfg.pipeline.threshold == 0.5 and cfg.model.device == "auto"  # --set, and the file's value
    cfg = config_from_args(command_parser("eval").parse_args(["--list", "val.txt", "--data-format", "frames"]))
    assert (cfg.train.val_list, cfg.train.data_format) == ("val.txt", "frames")


def test_bool_flags_flip_the_default_and_leave_the_setting_alone_when_absent():
    parser = command_parser("stream")
    cfg = config_from_args(parser.parse_args(["--source", "a.mp4", "--no-realtime", "--loop"]))
    assert (cfg.pipeline.file_realtime, cfg.pipeline.file_loop) == (False, True)
    cfg = config_from_args(parser.parse_args(["--source", "a.mp4", "--set", "pipeline.file_realtime=false"]))
    assert (cfg.pipeline.file_realtime, cfg.pipeline.file_loop) == (False, False)


@pytest.mark.parametrize("argv,needle", [
    (["predict", "c.mp4", "--precision", "fp64"],
     "argument --precision: invalid choice: 'fp64' (choose from 'auto', 'fp32', 'bf16', 'fp16')"),
    (["train", "--arch", "resnet3"],
     "argument --arch: invalid choice: 'resnet3' (choose from 'resnet18', 'resnet34', 'resnet50', 'resnet101')"),
    (["eval", "--views", "5x5"], "argument --views: invalid choice: '5x5' (choose from '1x1', '10x3')"),
    (["stream", "--source", "0", "--backend", "gpu"],
     "argument --backend: invalid choice: 'gpu' (choose from 'auto', 'dali', 'cpu')"),
    (["export", "--precision", "fp16"], "argument --precision: invalid choice: 'fp16' (choose from 'fp32', 'bf16')"),
])
def test_a_bad_choice_is_a_usage_error_naming_the_allowed_values(capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        tdn_main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"tdn {argv[0]}: error: {needle}" in err


def test_a_flag_outside_its_range_is_the_config_error_naming_the_key(capsys):
    assert tdn_main(["info", "--segments", "0"]) == 2
    assert "tdn info: error: config key 'model.num_segments' must satisfy 1 <= num_segments <= 64; got 0" \
        in capsys.readouterr().err

