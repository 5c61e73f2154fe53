"""Clip tab: upload a video, get the clip's prediction, scores over sliding windows and an annotated video."""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.utils import get_upload_folder

from app import examples, views
from app.inputs import VIDEO_SUFFIXES, check_upload
from app.jobs import Busy, JobGate
from app.sessions import ModelHost
from app.tabs import VIEW_HEIGHT, PageControls
from tdn.config import Config
from tdn.registry import VIEWS

KEPT_CLIP_VIDEOS = 8  # annotated clip videos kept on disk (older ones are deleted)


def build(host: ModelHost, config: Config, page: PageControls) -> None:
    app_cfg = config.app
    upload_folder = Path(get_upload_folder())
    upload_folder.mkdir(parents=True, exist_ok=True)  # Gradio makes it on the first upload; a new machine has none
    clip_videos = Path(tempfile.mkdtemp(prefix="tdn_clips_", dir=upload_folder))
    clip_gate = JobGate(app_cfg.clip_jobs, app_cfg.clip_queue)  # across all sessions

    def on_clip(path, views_choice: str, threshold: float, heatmap: str, progress=gr.Progress()):
        if not path:
            return None, "⚠️ upload a video first", None, None
        try:
            clip = check_upload(path, upload_dir=get_upload_folder(), max_mb=app_cfg.max_upload_mb)
            with clip_gate.turn(on_wait=lambda: progress(0.0, desc="waiting for other clip jobs to finish")):
                service = host.service
                progress(0.0, desc="reading the clip")
                result = service.predict_clip(clip, views=views_choice, per_window=True,
                                              progress=lambda done, what: progress(0.9 * done, desc=what))
                progress(0.9, desc="drawing the annotated video")
                out = clip_videos / f"{clip.stem}_{uuid.uuid4().hex[:8]}_annotated.webm"
                for old in sorted(clip_videos.iterdir(), key=lambda f: f.stat().st_mtime)[:-KEPT_CLIP_VIDEOS]:
                    old.unlink(missing_ok=True)
                video = views.render_clip_video(clip, result, service.labels, out,
                                                threshold=threshold, heatmap=heatmap, k=host.config.pipeline.topk,
                                                spec=service.spec,
                                                progress=lambda done: progress(0.9 + 0.1 * done,
                                                                               desc="drawing the annotated video"))
        except Busy as exc:
            gr.Warning(str(exc))
            return None, f"⚠️ {exc}", None, None
        except (ValueError, FileNotFoundError) as exc:  # not a video, unreadable, too large, ...
            message = str(exc)
            for shown in {str(path), str(Path(path).resolve())}:  # the file's name, not the server's folders
                message = message.replace(shown, Path(path).name)
            gr.Warning(message)
            return None, f"⚠️ {message}", None, None
        scores = views.topk_scores(result.scores, service.labels, host.config.pipeline.topk)
        timeline = pd.DataFrame(views.timeline_rows(result, service.labels), columns=["time", "score", "label"])
        claimed = views.claimed_label(tuple(scores.items()), threshold) or "nothing above threshold"
        summary = (f"**{claimed}** ({result.views} views, {result.frames} frames at {result.fps:.1f} fps, "
                   f"{len(result.windows or [])} sliding windows)")
        if result.warning:
            gr.Warning(result.warning)
            summary += f"\n\n⚠️ {result.warning}"
        return scores, summary, str(video), timeline

    with gr.Tab("Clip", elem_id="tab-clip"):
        with gr.Row():
            # a file box, not gr.Video: the browser need not be able to play the upload (mp4v, AVI, ...)
            clip_in = gr.File(label="Video clip", file_types=list(VIDEO_SUFFIXES), type="filepath",
                              height=VIEW_HEIGHT, elem_id="clip-upload")
            annotated = gr.Video(show_label=False, height=VIEW_HEIGHT, interactive=False, elem_id="clip-annotated")
        with gr.Row():
            views_choice = gr.Radio(list(VIEWS), value="1x1", label="Views (1x1: centre crop; 10x3: dense test)")
            go = gr.Button("Predict", variant="primary", elem_id="clip-predict")
        # i14-first hook: the shipped example clips; a click loads one and predicts it
        example_list = gr.Examples([[str(p)] for p in examples.example_clips()], inputs=[clip_in],
                                   label="Example clips (synthetic motions the demo model knows): click one",
                                   elem_id="clip-examples")
        summary = gr.Markdown(elem_id="clip-summary")
        with gr.Row():
            label = gr.Label(label="Clip prediction", elem_id="clip-label")
            timeline = gr.LinePlot(x="time", y="score", color="label", label="Scores over sliding windows",
                                   x_title="time in clip (s)", y_title="probability", y_lim=[0, 1],
                                   elem_id="clip-timeline")

    go.click(on_clip, [clip_in, views_choice, page.threshold, page.heatmap], [label, summary, annotated, timeline],
             concurrency_limit=None)  # no Gradio queue: clip_gate runs, queues or turns requests away
    example_list.load_input_event.then(on_clip, [clip_in, views_choice, page.threshold, page.heatmap],
                                       [label, summary, annotated, timeline], concurrency_limit=None)
