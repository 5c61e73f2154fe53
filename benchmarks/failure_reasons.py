"""How long a bad camera URL takes to fail with its reason: a refused RTSP port and an HTTP URL
answering a web page (``text/html``), each opened as a ``LiveSource`` with the default pipeline
settings (``open_timeout_s`` 10 s); seconds from ``start()`` to ``failed``, median of ``--runs``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/failure_reasons.py --runs 5

The code measured is the checkout on ``PYTHONPATH`` (its path is printed; the test servers come
from this one's ``tests/``). Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "tests"))

from hostile_servers import HostileServer  # noqa: E402
from loopback import free_port  # noqa: E402
from pipelines import sources  # noqa: E402
from pipelines.sources import open_source  # noqa: E402
from tdn.config import PipelineConfig  # noqa: E402


def seconds_to_fail(url: str) -> tuple[float, str]:
    started = time.monotonic()
    source = open_source(url, config=PipelineConfig()).start()
    try:
        status = source.wait_for_state({"failed", "live"}, 60.0)
    finally:
        source.stop()
    return time.monotonic() - started, f"{status.state}: {status.detail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"code measured: {sources.__file__}")
    for kind in ("refused", "html"):
        runs = []
        for _ in range(args.runs):
            if kind == "refused":
                runs.append(seconds_to_fail(f"rtsp://127.0.0.1:{free_port()}/x"))
            else:
                with HostileServer("html") as server:
                    runs.append(seconds_to_fail(server.url("http")))
        times = [round(took, 3) for took, _ in runs]
        print(f"{kind}: median {statistics.median(times):.3f} s of {times}; {runs[-1][1]}")


if __name__ == "__main__":
    main()
