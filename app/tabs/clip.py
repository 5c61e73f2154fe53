"""Clip tab: upload a video; the headline says what happens over time (segments of the sliding
windows, :mod:`pipelines.segments`), a timeline shows the segments and window scores with a
playhead linked to the annotated video (:mod:`app.timeline`), and the whole-clip TDN protocol
score comes second. The annotated video is drawn while the clip is read (:mod:`app.clip_video`);
one progress bar with an estimate of the time left follows the whole job."""
from __future__ import annotations

import math
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from app import examples, views
from app.clip_video import AnnotatedClipVideo
from app.inputs import VIDEO_SUFFIXES, check_upload
from app.jobs import Busy, JobGate
from app.sessions import ModelHost
from app.tabs import VIEW_HEIGHT, PageControls
from app.timeline import TIMELINE_JS
from pipelines.segments import UNCERTAIN, clip_segments, format_seconds, headline, protocol_note
from tdn.config import Config
from tdn.registry import VIEWS
from tdn.video import probe_video

KEPT_CLIP_VIDEOS = 8  # annotated clip videos kept on disk (older ones are deleted)
ETA_AFTER = 0.05  # the time left is estimated once this fraction of the job is done


class ProgressWithEta:
    """Forwards ``(fraction, what)`` to one ``gr.Progress`` bar, adding the time left estimated from the pace so far."""

    def __init__(self, progress, clock=time.monotonic):
        self.progress, self.clock, self.started = progress, clock, clock()

    def __call__(self, done: float, what: str) -> None:
        elapsed = self.clock() - self.started
        if ETA_AFTER <= done < 1.0:
            what += f" · about {math.ceil(elapsed * (1.0 - done) / done)} s left"
        self.progress(done, desc=what)


def verdict_markdown(result, segments, labels: list[str] | None, *, threshold: float, window_seconds: float,
                     num_segments: int) -> str:
    """The headline (segments), how they were made, and the whole-clip protocol score with its note."""
    duration = result.frames / result.fps
    [(protocol_label, protocol_score)] = views.topk_scores(result.scores, labels, 1).items()
    lines = [f"### {headline(segments)}",
             f"From {len(result.windows or [])} sliding windows of {format_seconds(window_seconds)} s "
             f"(threshold {threshold:.2f}; below it a stretch is *{UNCERTAIN}*): "
             + " · ".join(f"{s.label or UNCERTAIN} {format_seconds(s.start_s)}-{format_seconds(s.end_s)} s "
                          f"(mean score {s.score:.2f})" for s in segments),
             f"Whole clip, TDN test protocol ({result.views} views): {protocol_label} {protocol_score:.2f}"]
    note = protocol_note(segments, protocol_label, duration_s=duration, window_seconds=window_seconds,
                         num_segments=num_segments)
    if note:
        lines[-1] += f". *Why it can differ:* {note}"
    lines.append(f"{format_seconds(duration)} s, {result.frames} frames at {result.fps:.1f} fps.")
    if result.warning:
        lines.append(f"⚠️ {result.warning}")
    return "\n\n".join(lines)


def build(host: ModelHost, config: Config, page: PageControls) -> None:
    app_cfg = config.app
    upload_folder = Path(get_upload_folder())
    upload_folder.mkdir(parents=True, exist_ok=True)  # Gradio makes it on the first upload; a new machine has none
    clip_videos = Path(tempfile.mkdtemp(prefix="tdn_clips_", dir=upload_folder))
    clip_gate = JobGate(app_cfg.clip_jobs, app_cfg.clip_queue)  # across all sessions

    def on_clip(path, views_choice: str, threshold: float, heatmap: str, opacity: float, progress=gr.Progress()):
        if not path:
            return None, "⚠️ upload a video first", None, ""
        video = None
        try:
            clip = check_upload(path, upload_dir=get_upload_folder(), max_mb=app_cfg.max_upload_mb)
            with clip_gate.turn(on_wait=lambda: progress(0.0, desc="waiting for other clip jobs to finish")):
                service, pipeline = host.service, host.config.pipeline
                for old in sorted(clip_videos.iterdir(), key=lambda f: f.stat().st_mtime)[:-KEPT_CLIP_VIDEOS]:
                    old.unlink(missing_ok=True)
                video = AnnotatedClipVideo(clip_videos / f"{clip.stem}_{uuid.uuid4().hex[:8]}_annotated.mp4",
                                           probe_video(clip).fps, service.labels, threshold=threshold,
                                           heatmap=heatmap, k=pipeline.topk, spec=service.spec, opacity=opacity)
                result = service.predict_clip(clip, views=views_choice, per_window=True, sink=video,
                                              progress=ProgressWithEta(progress))
                out = video.close()
        except Busy as exc:
            gr.Warning(str(exc))
            return None, f"⚠️ {exc}", None, ""
        except (ValueError, FileNotFoundError) as exc:  # not a video, unreadable, too large, ...
            if video is not None:
                video.discard()
            message = str(exc)
            for shown in {str(path), str(Path(path).resolve())}:  # the file's name, not the server's folders
                message = message.replace(shown, Path(path).name)
            gr.Warning(message)
            return None, f"⚠️ {message}", None, ""
        segments = clip_segments(result, service.labels, window_seconds=pipeline.window_seconds,
                                 threshold=threshold, smoothing=pipeline.smoothing)
        if result.warning:
            gr.Warning(result.warning)
        summary = verdict_markdown(result, segments, service.labels, threshold=threshold,
                                   window_seconds=pipeline.window_seconds, num_segments=service.engine.num_segments)
        timeline = views.clip_timeline(result, segments, service.labels, pipeline.window_seconds)
        scores = views.topk_scores(result.scores, service.labels, pipeline.topk)
        return scores, summary, str(out), timeline

    with gr.Tab("Clip", elem_id="tab-clip"):
        with gr.Row():
            # a file box, not gr.Video: the browser need not be able to play the upload (mp4v, AVI, ...)
            clip_in = gr.File(label="Video clip", file_types=list(VIDEO_SUFFIXES), type="filepath",
                              height=VIEW_HEIGHT, elem_id="clip-upload")
            annotated = gr.Video(show_label=False, height=VIEW_HEIGHT, interactive=False, elem_id="clip-annotated")
        with gr.Row():
            views_choice = gr.Radio(list(VIEWS), value="1x1", label="Views (1x1: centre crop; 10x3: dense test)")
            go = gr.Button("Predict", variant="primary", elem_id="clip-predict")
        # the shipped example clips: a click loads one and predicts it
        example_list = gr.Examples([[str(p)] for p in examples.example_clips()], inputs=[clip_in],
                                   label="Example clips (synthetic motions the demo model knows): click one",
                                   elem_id="clip-examples")
        summary = gr.Markdown(elem_id="clip-summary")
        timeline = gr.HTML("", js_on_load=TIMELINE_JS, elem_id="clip-timeline")
        label = gr.Label(label="Whole-clip protocol score (secondary)", elem_id="clip-label")

    inputs = [clip_in, views_choice, page.threshold, page.heatmap, page.opacity]
    go.click(on_clip, inputs, [label, summary, annotated, timeline],
             show_progress_on=[annotated],  # one bar for the whole job, where the video will appear
             concurrency_limit=None)  # no Gradio queue: clip_gate runs, queues or turns requests away
    example_list.load_input_event.then(on_clip, inputs, [label, summary, annotated, timeline],
                                       show_progress_on=[annotated], concurrency_limit=None)
