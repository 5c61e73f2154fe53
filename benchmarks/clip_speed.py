"""How long a clip job takes in the app: the verdict (sliding windows + whole-clip protocol) and the
annotated video, for a 30 s 640x480 25 fps clip with the bundled demo model (target: 3 s on 2 cores).

The clip is made by the project's generator (``tdn.synth``: 15 s moving right, then 15 s moving
left, from 2.5 s pieces rendered at 160x120 as the demo model was trained, enlarged to 640x480). Timed, in one
process, alternating so a shared machine slows all alike (medians over ``--runs``):

- ``decode``: one pass of OpenCV decoding over the file (the floor of any clip job);
- ``verdict``: :func:`pipelines.clip.predict_clip` with ``per_window=True`` (no video);
- ``verdict_and_video``: the same with :class:`app.clip_video.AnnotatedClipVideo` as the sink, then the
  segments and the timeline: the clip tab's job, as the app runs it (less Gradio's own work);
- ``encode_vp8_opencv`` / ``encode_h264_ffmpeg``: the display-size frames (480x360) encoded by the old
  writer (OpenCV's VP8 WebM) and the new one, frames already in memory.

    .venv/bin/python benchmarks/clip_speed.py --runs 3 --out benchmarks/results/clip_speed.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.clip_video import AnnotatedClipVideo  # noqa: E402
from app.views import clip_timeline  # noqa: E402
from pipelines.segments import clip_segments, headline  # noqa: E402
from pipelines.service import RecognitionService  # noqa: E402
from tdn.bench import emit_record, machine, utc_now  # noqa: E402
from tdn.config import load_config  # noqa: E402
from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip  # noqa: E402
from tdn.video import BrowserVideoWriter, open_video, open_writer, write_video  # noqa: E402


def make_clip(path: Path, seconds: float, size: tuple[int, int], piece_s: float = 2.5) -> Path:
    """Half the clip moving right, half moving left, enlarged to ``size`` (w, h): each half is made of
    ``piece_s`` s tdn.synth clips (a synth clip spreads its motion over its length, so one long clip
    would move too slowly to read as motion)."""
    parts = []
    for i, motion in enumerate(("moving right", "moving left")):
        for piece in range(max(1, round(seconds / 2 / piece_s))):
            frames = render_clip(np.random.default_rng([3, i, piece]), CLASSES.index(motion), ClipSpec(seconds=piece_s, fps=25, webcam=False, pace_range=FULL_PACE))
            parts.append(np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]))
    write_video(path, np.concatenate(parts), 25)
    return path


def decode_only(path: Path) -> int:
    capture = open_video(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def display_frames(path: Path, max_side: int = 480) -> list[np.ndarray]:
    capture, frames = open_video(path), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        h, w = bgr.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        frames.append(cv2.resize(bgr, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2), interpolation=cv2.INTER_AREA))
    capture.release()
    return frames


def encode_vp8_opencv(frames, out: Path) -> None:
    writer = open_writer(out, "VP80", 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()


def encode_h264(frames, out: Path) -> None:
    writer = BrowserVideoWriter(out, 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    writer.release()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-vp8", action="store_true", help="leave out the slow OpenCV VP8 encode")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="clip_speed_"))
    clip = make_clip(work / "two_part.mp4", args.seconds, (args.width, args.height))
    config = load_config(overrides={"model.device": "cpu"})
    times: dict[str, list[float]] = {"decode": [], "verdict": [], "verdict_and_video": [], "encode_h264_ffmpeg": []}
    if not args.skip_vp8:
        times["encode_vp8_opencv"] = []
    with RecognitionService(config) as service:
        p = config.pipeline
        frames = display_frames(clip)
        results = []

        def verdict():
            result = service.predict_clip(clip, per_window=True)
            results.append(result)
            clip_segments(result, service.labels, window_seconds=p.window_seconds, threshold=0.5, smoothing=p.smoothing)

        def with_video():  # what the clip tab does (app/tabs/clip.py), less Gradio
            video = AnnotatedClipVideo(work / "annotated.mp4", 25.0, service.labels, threshold=0.5,
                                       heatmap="none", k=p.topk, spec=service.spec)
            result = service.predict_clip(clip, per_window=True, sink=video)
            video.close()
            segments = clip_segments(result, service.labels, window_seconds=p.window_seconds, threshold=0.5,
                                     smoothing=p.smoothing)
            clip_timeline(result, segments, service.labels, p.window_seconds)

        for _ in range(args.runs):  # the first run includes warming up
            times["decode"].append(timed(lambda: decode_only(clip)))
            times["verdict"].append(timed(verdict))
            times["verdict_and_video"].append(timed(with_video))
            times["encode_h264_ffmpeg"].append(timed(lambda: encode_h264(frames, work / "h264.mp4")))
            if not args.skip_vp8:
                times["encode_vp8_opencv"].append(timed(lambda: encode_vp8_opencv(frames, work / "vp8.webm")))
        model = service.engine.model
        result = results[-1]
        segments = clip_segments(result, service.labels, window_seconds=p.window_seconds, threshold=0.5,
                                 smoothing=p.smoothing)
    record = {
        "benchmark": "clip_speed",
        "date": utc_now(),
        "machine": machine(),
        "clip": f"{args.seconds:g} s {args.width}x{args.height} 25 fps mp4v, tdn.synth moving right then left",
        "model": f"bundled demo (TDN-R18 T=8 96 px), cpu, {model.precision}, engine {model.engine} ({model.engine_choice})",
        "windows": len(result.windows), "frames": result.frames,
        "headline": headline(segments),
        "runs": args.runs,
        "seconds_median": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    emit_record(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
