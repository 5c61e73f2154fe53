"""What every subcommand shares: ``--config`` and ``--set``, flags generated from the typed config,
range-checked numbers, and the config they all give.

A setting's flag is declared once, on its config field (:data:`tdn.config.SETTINGS`); a command
lists the keys it takes (:func:`add_setting_flags`) and :func:`config_from_args` maps what was
given to those keys. Such a flag's value is checked where every value is, by :func:`tdn.config.load_config`
(``tdn CMD: error: config key 'pipeline.topk' must satisfy ...``); its choices are argparse's.
"""
from __future__ import annotations

import argparse
from typing import Callable, Mapping

from tdn.config import DEFAULT_CONFIG_PATH, SETTINGS, Config, Range, load_config, parse_override


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="YAML settings file (default: %(default)s)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config setting, e.g. --set model.num_segments=16 (repeatable)",
    )


def add_setting_flags(parser: argparse.ArgumentParser, *keys: str, rename: Mapping[str, str] | None = None) -> None:
    """On ``parser`` (or an argument group), the flag each config key declares, default None (the config's
    value); ``rename`` gives a key this command's own flag name."""
    for key in keys:
        s = SETTINGS[key]
        flag = (rename or {}).get(key, s.flag)
        if flag is None:
            raise ValueError(f"config key {key!r} declares no command-line flag")
        if s.type is bool:
            parser.add_argument(flag, dest=key, action="store_const", const=not s.default, default=None,
                                help=f"{s.help} (sets {key} to {str(not s.default).lower()})")
            continue
        allowed = f"; {s.range.describe(s.name)}" if s.range else ""
        parser.add_argument(flag, dest=key, type=s.type, choices=s.choices or None, default=None,
                            metavar=None if s.choices else flag.lstrip("-").replace("-", "_").upper(),
                            help=f"{s.help} (default: {key}{allowed})".replace("%", "%%"))


def bounded(kind: type, allowed: Range) -> Callable[[str], int | float]:
    """An argparse ``type``: a ``kind`` (int or float) in ``allowed``, else a usage error naming the range."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value not in allowed:  # NaN is in no range
            raise argparse.ArgumentTypeError(f"must satisfy {allowed.describe('value')}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def config_from_args(args: argparse.Namespace) -> Config:
    """Config file, then ``--set`` overrides, then the setting flags given (those not None)."""
    overrides = dict(parse_override(text) for text in args.overrides)
    overrides.update({key: value for key, value in vars(args).items() if key in SETTINGS and value is not None})
    return load_config(args.config, overrides)
