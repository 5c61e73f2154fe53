"""What every subcommand shares: ``--config`` and ``--set``, range-checked numbers, and the config they give."""
from __future__ import annotations

import argparse
from typing import Callable

from tdn.config import DEFAULT_CONFIG_PATH, Config, Range, load_config, parse_override


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="YAML settings file (default: %(default)s)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config setting, e.g. --set model.num_segments=16 (repeatable)",
    )


def bounded(kind: type, lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str], int | float]:
    """An argparse ``type``: a ``kind`` (int or float) in the range, else a usage error naming the range."""
    allowed = Range(lo, hi, lo_open=lo_open)

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


def config_from_args(args: argparse.Namespace, **flag_overrides) -> Config:
    """Config file, then ``--set`` overrides, then the subcommand's own flags (those not None)."""
    overrides = dict(parse_override(text) for text in args.overrides)
    overrides.update({k: v for k, v in flag_overrides.items() if v is not None})
    return load_config(args.config, overrides)
