"""Does a hostile stream stall the others? A good RTSP stream and clip opens, while bad sources open.

One good ``LiveSource`` reads the loopback RTSP test server (tests/rtsp_server.py, 64x48 at
25 fps). During ``--seconds`` s, ``--bad`` sources per hostile kind (``silent``: accepts TCP and
never answers; ``garbage``: sends random bytes; as ``rtsp://`` and ``http://`` URLs) are opened
again and again (open timeout ``--open-timeout``), while one thread opens a small video file
with ``cv2.VideoCapture`` and decodes it with ``pipelines.clip.read_frames``, and another opens
a second source on the good stream until it is live, each one after another. Reported: the good
stream's largest gap between frames and frames received, the wall times of the good stream's
re-opens (start to ``live``) and of the clip opens (p50 / max). ``--bad 0`` is the baseline.

    .venv/bin/python benchmarks/hostile_streams.py --seconds 20 [--bad 0]

Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loopback import RtspServer, free_port  # noqa: E402
from hostile_servers import HostileServer  # noqa: E402
from media import moving_square_frames, write_video  # noqa: E402
from pipelines.buffer import FrameBuffer  # noqa: E402
from pipelines.clip import read_frames  # noqa: E402
from pipelines.sources import LiveSource  # noqa: E402


def keep_opening(url: str, open_timeout: float, stop: threading.Event) -> None:
    """Open ``url`` as a source again and again until ``stop`` (each attempt until it fails)."""
    while not stop.is_set():
        src = LiveSource(url, open_timeout_s=open_timeout, read_timeout_s=open_timeout,
                         reconnect_initial_s=0.1, reconnect_max_s=0.5).start()
        while not stop.is_set() and src.status.state not in ("failed", "ended"):
            src.wait_for_state({"failed", "ended"}, timeout=0.2)
        src.stop()


def good_opens(url: str, stop: threading.Event, times: list[float]) -> None:
    """Open the good stream again and again; the wall time from start() to ``live`` each time."""
    while not stop.is_set():
        started = time.monotonic()
        with LiveSource(url, open_timeout_s=30, read_timeout_s=5) as src:
            if src.wait_for_state({"live", "failed"}, timeout=30).state == "live":
                times.append(time.monotonic() - started)
        stop.wait(0.1)


def clip_opens(path: Path, stop: threading.Event, times: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
        frames, _ = read_frames(path, {0, 5, 10})
        assert ok and len(frames) == 3
        times.append(time.monotonic() - started)
        stop.wait(0.1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--bad", type=int, default=1, help="sources per hostile kind (0: baseline)")
    p.add_argument("--open-timeout", type=float, default=4.0)
    args = p.parse_args()

    server = RtspServer(free_port()).start()
    hostile = [HostileServer(kind).__enter__() for kind in ("silent", "garbage")]
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_video(Path(tmp) / "clip.mp4", moving_square_frames(25))
        good = LiveSource(server.url, open_timeout_s=10, read_timeout_s=5,
                          buffer=FrameBuffer(max_seconds=None, max_frames=100_000)).start()
        try:
            assert good.wait_for_state({"live", "failed"}, 15).state == "live"
            time.sleep(1.0)
            start_t, start_index = time.time(), good.stats().frames_read
            stop = threading.Event()
            open_times: list[float] = []
            live_times: list[float] = []
            threads = [threading.Thread(target=clip_opens, args=(clip, stop, open_times)),
                       threading.Thread(target=good_opens, args=(server.url, stop, live_times))]
            for server_ in hostile:
                for scheme in ("rtsp", "http"):
                    threads += [threading.Thread(target=keep_opening,
                                                 args=(server_.url(scheme), args.open_timeout, stop))
                                for _ in range(args.bad)]
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            stop.set()
            frames = [f for f in good.buffer.snapshot() if f.t >= start_t]
            received = good.stats().frames_read - start_index
            for t in threads:
                t.join(args.open_timeout + 15)
        finally:
            good.stop()
            server.stop()
            for server_ in hostile:
                server_.__exit__()
    gaps = np.diff([start_t] + [f.t for f in frames])
    record = {
        "bad_sources": 4 * args.bad, "seconds": args.seconds, "open_timeout_s": args.open_timeout,
        "good_frames": received, "good_max_gap_s": round(float(gaps.max()), 3) if len(gaps) else None,
        "good_gaps_over_1s": int((gaps > 1.0).sum()),
        "good_reopens": len(live_times), "good_reopen_p50_s": round(float(np.median(live_times)), 3),
        "good_reopen_max_s": round(float(max(live_times)), 3),
        "clip_opens": len(open_times), "clip_open_p50_s": round(float(np.median(open_times)), 3),
        "clip_open_max_s": round(float(max(open_times)), 3),
    }
    print(json.dumps(record, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
