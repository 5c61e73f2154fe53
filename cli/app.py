"""``tdn app``: the Gradio web UI, bound to 127.0.0.1 and started on the bundled demo model by default."""
from __future__ import annotations

import argparse
import logging

from app.inputs import resolve_auth
from cli.options import config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default: app.host, 127.0.0.1); 0.0.0.0 only with auth")
    parser.add_argument("--port", type=int, help="port (default: app.port)")
    parser.add_argument("--weights", help="model file (default: model.weights, else the bundled demo model)")
    parser.add_argument("--labels", help="label file for the weights (default: model.labels)")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, **{"app.host": args.host, "app.port": args.port,
                                    "model.weights": args.weights, "model.labels": args.labels})
    auth = resolve_auth(cfg.app.auth)
    if cfg.app.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        logging.getLogger(__name__).warning(
            "serving on %s without authentication: set app.auth or $TDN_APP_AUTH", cfg.app.host)
    from app.ui import launch  # Gradio is imported only when the app really starts

    launch(cfg, auth=auth)
    return 0
