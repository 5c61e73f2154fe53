"""The ``tdn`` command: one entry point, one module per subcommand.

Each subcommand lives in its own module of this package (``cli/info.py`` for ``tdn info``...),
which defines ``add_arguments(parser)`` and ``main(args) -> int``; only the chosen module is
imported, so ``tdn --help`` stays fast and ``tdn info`` never pays for Gradio's import. Every
subcommand accepts ``--config`` and repeated ``--set section.key=value`` overrides (see
:mod:`cli.options`).

User errors end as ``tdn CMD: error: ...`` with exit code 2 and no traceback: every
``ValueError`` (which includes ``ConfigError``, ``CheckpointError``, ``ClipError`` and
``SourceError``) and every ``OSError`` (missing, unreadable or unwritable files). Any other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from cli.options import add_config_arguments

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "app": ("cli.app", "run the Gradio web UI (webcam, cameras, clips)"),
    "stream": ("cli.stream", "live predictions from cameras, RTSP/HTTP streams or files as JSON lines"),
    "predict": ("cli.predict", "clip-level predictions for video files"),
    "info": ("cli.info", "parameters and multiply-adds of a model"),
    "bench": ("cli.bench", "benchmarks (model speed, pipeline latency)"),
    "train": ("cli.train", "train a model from TDN-format lists"),
    "eval": ("cli.eval", "evaluate a model on a TDN-format list"),
    "synth": ("cli.synth", "generate the synthetic motion dataset"),
    "export": ("cli.export", "export a model to TorchScript or ONNX (exact, self-describing)"),
    "cluster": ("cli.cluster", "cluster mode on Ray: camera cells on many machines behind one HTTP front end"),
}


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

