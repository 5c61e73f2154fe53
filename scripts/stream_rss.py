"""Resident memory of the app's stream path over open/close cycles (``docs/app.md``, "Memory").

Each cycle opens ``--streams`` push streams (what browser webcams are) on one
:class:`app.sessions.ModelHost`, fills each buffer with 640x480 frames from several threads (as
Gradio's worker threads do), lets the model score them, closes every stream, and prints the
process's RSS::

    .venv/bin/python scripts/stream_rss.py --streams 16 --cycles 3
"""
from __future__ import annotations

import argparse
import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.sessions import BrowserSession, ModelHost  # noqa: E402
from tdn.config import load_config  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def fill(host: ModelHost, session: BrowserSession, frames: int, seed: int) -> None:
    """Push ``frames`` 640x480 frames 40 ms apart into the session's webcam stream."""
    stream = session.webcam_stream()
    base = np.random.default_rng(seed).integers(0, 255, (480, 640, 3), np.uint8)
    for i in range(frames):
        host.service.push_frame(stream, np.roll(base, 3 * i, axis=1), t=1000.0 + 0.04 * i)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--frames", type=int, default=150, help="frames pushed per stream (150: a full 6 s buffer)")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    config = load_config(overrides={"model.device": "cpu", "pipeline.backend": "cpu",
                                    "app.max_streams": args.streams, "app.webcam_sessions": args.streams})
    host = ModelHost(config)
    print(f"model loaded: RSS {rss_mb():.0f} MB", flush=True)
    with ThreadPoolExecutor(args.threads) as pool:
        for cycle in range(1, args.cycles + 1):
            sessions = [BrowserSession(host, config.app.max_cameras) for _ in range(args.streams)]
            list(pool.map(lambda s: fill(host, s[1], args.frames, s[0]), enumerate(sessions)))
            host.service.engine.wait_idle(60)
            opened = rss_mb()
            for session in sessions:
                session.close()
            del sessions
            gc.collect()
            print(f"cycle {cycle}: {args.streams} streams open {opened:.0f} MB, all closed {rss_mb():.0f} MB",
                  flush=True)
    host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
