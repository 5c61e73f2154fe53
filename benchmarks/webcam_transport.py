"""Browser webcam benchmark: the app's Webcam tab in Debian's Chromium with a fake 25 fps camera,
old transport (Gradio's streaming image, a frame every ``app.stream_every`` s) against new (WebRTC).

The fake camera plays the generator's "moving left" clip (160x120, 8 s, looped) with each frame's
index drawn as a 10-bit bar code in the left 16 px (outside the model's centre crop). The page reads
the code of every frame its camera preview presents, with the frame's capture time (Chromium's
``requestVideoFrameCallback`` metadata, same machine, same clock); the server reads it from every frame
pushed into the service and from the newest frame of every scored window. Reported:

- ``fps``: the service's stats fps of the webcam stream (what reaches the model), median over the run;
- ``transport_ms``: camera capture -> frame pushed into the service, p50/p95;
- ``e2e_ms``: camera capture of a window's newest frame -> its prediction emitted, p50/p95 (the page
  shows it within ``app.refresh_s`` more);
- predictions/s and the share of predictions whose top-1 is "moving left".

The old transport lives in the commit before WebRTC; run it from a copy of that tree:

    git archive 9d809bb | tar -x -C /tmp/old
    .venv/bin/python benchmarks/webcam_transport.py --path old --tree /tmp/old --seconds 60
    .venv/bin/python benchmarks/webcam_transport.py --path new --seconds 60

Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

BITS, BAR_WIDTH, CLIP_SECONDS = 10, 16, 8  # frame index code: BITS blocks stacked in the left BAR_WIDTH px

# The page's side: every frame the camera preview presents -> [frame index, capture time in unix ms].
READ_CODES_JS = """
([selector, bits, barWidth]) => {
  window.benchCaptures = [];
  const video = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const onFrame = (now, meta) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      canvas.width = w; canvas.height = h;
      ctx.drawImage(video, 0, 0, w, h);
      const x = Math.floor(barWidth / 2 * w / 160);
      let code = 0;
      for (let b = 0; b < bits; b++) {
        const y = Math.floor((b + 0.5) * h / bits);
        const [r, g, bl] = ctx.getImageData(x, y, 1, 1).data;
        if (r + g + bl > 3 * 128) code |= 1 << b;
      }
      const captured = meta.captureTime !== undefined ? meta.captureTime : meta.expectedDisplayTime;
      window.benchCaptures.push([code, performance.timeOrigin + captured, meta.captureTime !== undefined]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
"""


def with_codes(frames: np.ndarray) -> list[np.ndarray]:
    """Each RGB frame with its index as a bar code (white = 1) in the left BAR_WIDTH columns."""
    out = []
    height = frames.shape[1]
    for index, frame in enumerate(frames):
        frame = frame.copy()
        for bit in range(BITS):
            rows = slice(bit * height // BITS, (bit + 1) * height // BITS)
            frame[rows, :BAR_WIDTH] = 255 if index >> bit & 1 else 0
        out.append(frame)
    return out


def read_code(image: np.ndarray) -> int:
    height, width = image.shape[:2]
    x = BAR_WIDTH // 2 * width // 160
    return sum(1 << bit for bit in range(BITS) if image[int((bit + 0.5) * height / BITS), x].mean() > 128)


def latencies_ms(server: list[tuple[float, int]], captures: dict[int, list[float]]) -> list[float]:
    """For each (server time, frame index), the time since the newest capture of that index before it
    (within half a loop of the clip, so a loop's earlier pass is never matched)."""
    out = []
    for t, code in server:
        times = captures.get(code, [])
        i = bisect.bisect_right(times, t) - 1
        if i >= 0 and t - times[i] < CLIP_SECONDS / 2:
            out.append(1000 * (t - times[i]))
    return out


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q = np.percentile(values, [50, 95])
    return {"n": len(values), "p50": round(float(q[0]), 1), "p95": round(float(q[1]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=("old", "new"), required=True, help="which Webcam tab the tree has")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="source tree to run the app from (old: a copy of the commit before WebRTC)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time after a 10 s warm-up")
    parser.add_argument("--work", type=Path, default=Path("/tmp/webcam_transport"), help="folder for the .y4m")
    args = parser.parse_args()
    sys.path[:0] = [str(args.tree), str(args.tree / "tests")]

    from playwright.sync_api import sync_playwright

    from app.ui import launch
    from browser import chromium, open_page
    from loopback import free_port
    from media import write_y4m
    from pipelines.events import PredictionEvent, StatsEvent
    from pipelines.service import RecognitionService
    from tdn.bench import machine, utc_now
    from tdn.config import load_config
    from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip

    args.work.mkdir(parents=True, exist_ok=True)
    clip = render_clip(np.random.default_rng([11, 0, 0, 0]), CLASSES.index("moving left"),
                       ClipSpec(seconds=CLIP_SECONDS, fps=25, webcam=False, pace_range=FULL_PACE))
    y4m = write_y4m(args.work / "moving_left_coded.y4m", with_codes(clip), fps=25)

    pushed: list[tuple[float, int]] = []  # (unix time the service got the frame, frame index)
    lock = threading.Lock()
    measuring = threading.Event()
    push_frame = RecognitionService.push_frame

    def recording_push(self, stream_id, image, t=None, **kwargs):
        if measuring.is_set():
            with lock:
                pushed.append((time.time(), read_code(image)))
        return push_frame(self, stream_id, image, t, **kwargs)

    RecognitionService.push_frame = recording_push  # both transports end in push_frame
    cfg = load_config(overrides={"pipeline.backend": "cpu", "app.port": free_port()})
    demo, host = launch(cfg, prevent_thread_lock=True, quiet=True)
    predicted: list[tuple[float, int]] = []
    top1: Counter[str] = Counter()
    fps: list[float] = []

    def on_event(event) -> None:
        if not event.stream.startswith("webcam") or not measuring.is_set():
            return
        if isinstance(event, PredictionEvent):
            newest = max((f for segment in event.window.frames for f in segment), key=lambda f: f.t)
            predicted.append((time.time(), read_code(newest.image)))
            top1[event.prediction.topk[0][0]] += 1
        elif isinstance(event, StatsEvent):
            fps.append(event.fps)

    host.service.subscribe(on_event, kinds=("prediction", "stats"))
    try:
        with sync_playwright() as p, chromium(p, y4m) as browser, \
                open_page(browser, f"http://127.0.0.1:{cfg.app.port}/") as page:
            if args.path == "new":
                page.locator("#webcam-start").click()
                preview = "#webcam-preview video"
            else:
                page.get_by_text("Click to Access Webcam").click()
                page.locator("#webcam button[aria-label='capture photo']").click()
                preview = "#webcam video"
            page.locator(preview).wait_for()
            page.evaluate(READ_CODES_JS, [preview, BITS, BAR_WIDTH])
            time.sleep(10)  # warm-up: first windows, encoder ramp-up
            measuring.set()
            time.sleep(args.seconds)
            measuring.clear()
            captured = page.evaluate("window.benchCaptures")
    finally:
        demo.close()
        host.close()

    captures: dict[int, list[float]] = defaultdict(list)
    for code, unix_ms, _ in captured:
        captures[code].append(unix_ms / 1000)
    for times in captures.values():
        times.sort()
    total = sum(top1.values())
    record = {
        "benchmark": "webcam_transport", "path": args.path, "date": utc_now(), "machine": machine(),
        "seconds": args.seconds, "fps_p50": round(statistics.median(fps), 1) if fps else None,
        "frames_pushed": len(pushed), "predictions_per_s": round(total / args.seconds, 2),
        "transport_ms": percentiles(latencies_ms(pushed, captures)),
        "e2e_ms": percentiles(latencies_ms(predicted, captures)),
        "browser_frames": len(captured), "browser_capture_time": all(has for *_, has in captured),
        "top1": dict(top1), "moving_left_share": round(top1["moving left"] / total, 2) if total else None,
    }
    print(json.dumps(record, allow_nan=False))


if __name__ == "__main__":
    main()
