"""``tdn app``: the Gradio web UI, bound to 127.0.0.1 and started on the bundled demo model by default."""
from __future__ import annotations

import argparse
import logging

from app.inputs import resolve_auth
from cli.options import add_setting_flags, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "app.host", "app.port", "model.weights", "model.labels")
    parser.add_argument("--cluster", default=None, metavar="URL",
                        help="a cluster front end (tdn cluster up), e.g. http://127.0.0.1:8470: the Cameras tab lists "
                             "its cameras")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    auth = resolve_auth(cfg.app.auth)
    if cfg.app.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        logging.getLogger(__name__).warning(
            "serving on %s without authentication: set app.auth or $TDN_APP_AUTH", cfg.app.host)
    from app.ui import launch  # Gradio is imported only when the app really starts

    launch(cfg, auth=auth, cluster_url=args.cluster)
    return 0
