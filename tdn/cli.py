"""The ``tdn`` command: one entry point, one module per subcommand.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and
``main(args) -> int``; only the chosen module is imported, so ``tdn info`` never pays
for Gradio's import. Every subcommand accepts ``--config`` and repeated
``--set section.key=value`` overrides (see :mod:`tdn.config`).

User errors end as ``tdn CMD: error: ...`` with exit code 2 and no traceback: every
``ValueError`` (which includes ``ConfigError``, ``CheckpointError``, ``ClipError`` and
``SourceError``) and every ``OSError`` (missing, unreadable or unwritable files). Any other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from tdn.config import DEFAULT_CONFIG_PATH, Config, Range, load_config, parse_override

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "app": ("app.cli", "run the Gradio web UI (webcam, cameras, clips)"),
    "stream": ("pipelines.cli_stream", "live predictions from cameras, RTSP/HTTP streams or files as JSON lines"),
    "predict": ("pipelines.cli_predict", "clip-level predictions for video files"),
    "info": ("tdn.info", "parameters and multiply-adds of a model"),
    "bench": ("tdn.bench", "benchmarks (model speed, pipeline latency)"),
    "train": ("tdn.train", "train a model from TDN-format lists"),
    "eval": ("tdn.evaluate", "evaluate a model on a TDN-format list"),
    "synth": ("tdn.synth", "generate the synthetic motion dataset"),
    "export": ("tdn.export", "export a model to TorchScript"),
}


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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tdn", description="TDN live action recognition")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            add_config_arguments(p)
            importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in COMMANDS:
        build_parser().parse_args(argv)  # argparse reports the unknown command and exits
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"tdn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
