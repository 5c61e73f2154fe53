"""The Gradio UI: Webcam, Cameras and Clip tabs over one shared model, a model panel and overlay
settings. Pure frame functions live in :mod:`app.views`, per-tab state in :mod:`app.sessions`,
input checks in :mod:`app.inputs`; this module only wires components to them.

Every user-triggered error becomes a message in the page (``gr.Warning``/``gr.Error`` or a
status line); the server keeps serving other tabs.
"""
from __future__ import annotations

import logging
import tempfile
import uuid
import weakref
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from app import views
from app.inputs import (LABELS_DIR, VIDEO_SUFFIXES, WEIGHTS_DIR, check_upload, label_choices, parse_camera_source,
                        resolve_in_weights, weights_choices)
from app.jobs import Busy, JobGate
from app.login import LoginRateLimit, LoginThrottle
from app.sessions import BrowserSession, ModelHost, StreamLimitError
from pipelines.masking import mask_credentials
from tdn.config import Config
from tdn.registry import DEVICES, ENGINE_CHOICES, PRECISION_CHOICES, VIEWS

log = logging.getLogger(__name__)

KEEP_CHOICE = "keep current"
DEMO_CHOICE = "bundled demo model"
LABELS_FROM_WEIGHTS = "from the weights file"
VIEW_HEIGHT = 360
KEPT_CLIP_VIDEOS = 8  # annotated clip videos kept on disk (older ones are deleted)
CACHE_MAX_AGE_S = 3600  # Gradio's copies of uploads and outputs are deleted after this


def _model_summary(host: ModelHost) -> str:
    service = host.service
    cfg, meta = service.model.cfg, service.model.meta
    source = Path(meta.source).name if meta.source else "random initialisation"
    classes = f"{cfg.num_classes} classes" + ("" if meta.labels else " (no label names: showing indices)")
    pipeline = host.config.pipeline
    return (f"**Model:** TDN-{cfg.arch} `{cfg.variant}`, T={cfg.num_segments}, {classes}, input {meta.input_size} px; "
            f"weights `{source}`; engine `{service.model.engine}`, precision `{service.model.precision}` "
            f"({service.model.engine_choice}); window {pipeline.window_seconds:g} s, "
            f"smoothing {pipeline.smoothing}")


def build_ui(host: ModelHost, config: Config) -> gr.Blocks:
    """The app's ``gr.Blocks``; ``host`` holds the model service shared by all tabs."""
    app_cfg = config.app
    # Gradio session hash -> its tab's session, for unload; an entry goes when Gradio drops the tab's state
    sessions: weakref.WeakValueDictionary[str, BrowserSession] = weakref.WeakValueDictionary()
    upload_folder = Path(get_upload_folder())
    upload_folder.mkdir(parents=True, exist_ok=True)  # Gradio makes it on the first upload; a new machine has none
    clip_videos = Path(tempfile.mkdtemp(prefix="tdn_clips_", dir=upload_folder))
    clip_gate = JobGate(app_cfg.clip_jobs, app_cfg.clip_queue)  # across all sessions

    def open_session(request: gr.Request) -> BrowserSession:
        session = BrowserSession(host, app_cfg.max_cameras)
        sessions[request.session_hash] = session
        return session

    def close_session(request: gr.Request) -> None:
        """The tab closed (Gradio's unload): remove its streams now."""
        session = sessions.pop(request.session_hash, None)
        if session is not None:
            session.close()

    def forget_session(session: BrowserSession | None) -> None:
        """The tab's state expired (Gradio's ``delete_callback``): the same, if unload did not run."""
        if session is not None:
            for key in [k for k, v in sessions.items() if v is session]:
                sessions.pop(key, None)
            session.close()

    # -- webcam ------------------------------------------------------------------------------
    def on_webcam_frame(image, session: BrowserSession | None, threshold: float, heatmap: str):
        if image is None or session is None:
            return gr.skip(), gr.skip()
        frame = views.camera_view(image, mirrored=app_cfg.mirror_preview)
        service = host.service
        try:
            stream = session.webcam_stream()
        except StreamLimitError as exc:  # the next frame asks again
            return gr.skip(), f"⚠️ {exc}"
        try:
            service.push_frame(stream, frame)
            latest = service.latest(stream)
            stats = service.stats().get(stream)
        except ValueError:  # the model was replaced between the two calls: next frame re-opens
            return gr.skip(), gr.skip()
        shown = views.annotate_latest(frame, latest, service.spec, threshold=threshold, heatmap=heatmap,
                                      waiting=f"collecting frames ({host.config.pipeline.window_seconds:g} s window)")
        return shown, views.stream_summary(stats, latest, threshold)

    def on_webcam_stop(session: BrowserSession | None):
        if session is not None:
            session.stop_webcam()
        return "webcam stopped"

    # -- cameras -----------------------------------------------------------------------------
    def on_add_camera(text: str, session: BrowserSession | None):
        if session is None:
            return gr.update(), "⚠️ the page is still loading; try again"
        try:
            camera = session.add_camera(parse_camera_source(text))
        except (ValueError, FileNotFoundError) as exc:
            return gr.update(), f"⚠️ {mask_credentials(str(exc))}"
        if camera.error:
            session.remove_camera(len(session.cameras) - 1)
            return gr.update(), f"⚠️ {mask_credentials(camera.error)}"
        return "", f"added {camera.name}"

    def camera_slots(session: BrowserSession | None, threshold: float, heatmap: str) -> list:
        """Per slot: (visible column, annotated image, summary) for ``app.max_cameras`` slots."""
        cameras = session.live_cameras() if session is not None else []
        if not cameras and (session is None or not session.camera_slots_shown):
            return [gr.skip()] * (3 * app_cfg.max_cameras)  # nothing shown, nothing to show: send nothing
        if session is not None:
            session.camera_slots_shown = len(cameras)
        service = host.service
        stats = service.stats()
        updates = []
        for slot in range(app_cfg.max_cameras):
            if slot >= len(cameras):
                updates += [gr.update(visible=False), gr.update(value=None), gr.update(value="")]
                continue
            camera = cameras[slot]
            title = f"### {camera.name}\n"
            if camera.stream_id is None or camera.stream_id not in stats:
                updates += [gr.update(visible=True), gr.update(value=None),
                            gr.update(value=title + f"⚠️ {mask_credentials(camera.error or 'not open')}")]
                continue
            try:
                newest = service.latest_frame(camera.stream_id)
                latest = service.latest(camera.stream_id)
            except ValueError:  # removed or re-opened since the stats were read: the next tick shows it
                updates += [gr.skip()] * 3
                continue
            image = None
            if newest is not None:
                image = views.annotate_latest(newest.image, latest, service.spec, threshold=threshold,
                                              heatmap=heatmap, waiting="collecting frames")
            updates += [gr.update(visible=True), gr.update(value=image),
                        gr.update(value=title + views.stream_summary(stats[camera.stream_id], latest, threshold))]
        return updates

    # -- clip --------------------------------------------------------------------------------
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

    # -- model panel -------------------------------------------------------------------------
    def on_load_model(weights: str, labels: str, segments: float, precision: str, device: str, engine: str,
                      smoothing: float):
        model = {"num_segments": int(segments), "precision": precision, "device": device, "engine": engine}
        try:
            if weights != KEEP_CHOICE:
                model["weights"] = None if weights == DEMO_CHOICE else str(resolve_in_weights(weights))
            if labels != KEEP_CHOICE:
                model["labels"] = None if labels == LABELS_FROM_WEIGHTS else str(resolve_in_weights(labels, LABELS_DIR))
            host.reload(model, {"smoothing": int(smoothing)})
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(f"model not changed: {exc}") from exc
        return _model_summary(host)

    # -- layout ------------------------------------------------------------------------------
    with gr.Blocks(title="TDN live action recognition", analytics_enabled=False,
                   delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as demo:
        session = gr.State(None, delete_callback=forget_session)
        gr.Markdown("# TDN live action recognition")
        model_info = gr.Markdown(_model_summary(host), elem_id="model-info")
        with gr.Row():
            threshold = gr.Slider(0.0, 1.0, value=host.config.pipeline.threshold, step=0.01,
                                  label="Threshold (below it nothing is claimed)", elem_id="threshold")
            heatmap = gr.Radio(views.HEATMAP_CHOICES, value="none", label="Heat map", elem_id="heatmap")

        with gr.Tab("Webcam", elem_id="tab-webcam"):
            gr.Markdown("Your browser's camera, streamed to the server. The preview may be mirrored; "
                        "the model sees frames as the camera captured them (right panel).")
            with gr.Row():
                webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                  webcam_options=gr.WebcamOptions(mirror=app_cfg.mirror_preview),
                                  height=VIEW_HEIGHT, elem_id="webcam")
                webcam_out = gr.Image(show_label=False, height=VIEW_HEIGHT, elem_id="webcam-annotated",
                                      buttons=["fullscreen"])
            webcam_info = gr.Markdown(elem_id="webcam-info")

        with gr.Tab("Cameras", elem_id="tab-cameras"):
            with gr.Row():
                camera_text = gr.Textbox(label="Camera", placeholder="0, rtsp://user:pass@host:554/stream, http://…",
                                         scale=4, elem_id="camera-source")
                add_camera = gr.Button("Add camera", scale=1, elem_id="add-camera")
            camera_message = gr.Markdown(elem_id="camera-message")
            slot_outputs, remove_buttons = [], []
            with gr.Row():
                for slot in range(app_cfg.max_cameras):
                    with gr.Column(visible=False, min_width=280) as column:
                        image = gr.Image(show_label=False, height=VIEW_HEIGHT * 2 // 3, interactive=False,
                                         elem_id=f"camera-view-{slot}", buttons=["fullscreen"])
                        summary = gr.Markdown(elem_id=f"camera-info-{slot}")
                        remove = gr.Button("Remove", size="sm", elem_id=f"camera-remove-{slot}")
                    slot_outputs += [column, image, summary]
                    remove_buttons.append(remove)
            refresh = gr.Timer(app_cfg.refresh_s)

        with gr.Tab("Clip", elem_id="tab-clip"):
            with gr.Row():
                # a file box, not gr.Video: the browser need not be able to play the upload (mp4v, AVI, ...)
                clip_in = gr.File(label="Video clip", file_types=list(VIDEO_SUFFIXES), type="filepath",
                                  height=VIEW_HEIGHT, elem_id="clip-upload")
                clip_video = gr.Video(show_label=False, height=VIEW_HEIGHT, interactive=False, elem_id="clip-annotated")
            with gr.Row():
                clip_views = gr.Radio(list(VIEWS), value="1x1", label="Views (1x1: centre crop; 10x3: dense test)")
                clip_go = gr.Button("Predict", variant="primary", elem_id="clip-predict")
            clip_summary = gr.Markdown(elem_id="clip-summary")
            with gr.Row():
                clip_label = gr.Label(label="Clip prediction", elem_id="clip-label")
                clip_timeline = gr.LinePlot(x="time", y="score", color="label", label="Scores over sliding windows",
                                            x_title="time in clip (s)", y_title="probability", y_lim=[0, 1],
                                            elem_id="clip-timeline")

        with gr.Accordion("Model", open=False, elem_id="model-panel"):
            gr.Markdown(f"Weights come from `{WEIGHTS_DIR.name}/` only; label files from `{WEIGHTS_DIR.name}/"
                        f"{LABELS_DIR.name}/`. Loading replaces the model for every user; open streams re-attach.")
            with gr.Row():
                weights_in = gr.Dropdown([KEEP_CHOICE, DEMO_CHOICE, *weights_choices()], value=KEEP_CHOICE,
                                         label="Weights")
                labels_in = gr.Dropdown([KEEP_CHOICE, LABELS_FROM_WEIGHTS, *label_choices()], value=KEEP_CHOICE,
                                        label="Label file")
                segments_in = gr.Number(value=host.service.model.cfg.num_segments, precision=0, minimum=1, maximum=64,
                                        label="Segments T (official checkpoints; ours store T)")
            with gr.Row():
                precision_in = gr.Dropdown(list(PRECISION_CHOICES), value=config.model.precision, label="Precision")
                device_in = gr.Dropdown(list(DEVICES), value=config.model.device, label="Device")
                engine_in = gr.Dropdown(list(ENGINE_CHOICES), value=config.model.engine, label="Engine")
                smoothing_in = gr.Slider(1, 16, value=config.pipeline.smoothing, step=1,
                                         label="Smoothing (windows averaged)")
            load = gr.Button("Load model", variant="primary", elem_id="load-model")

        # -- events --------------------------------------------------------------------------
        demo.load(open_session, outputs=session)
        demo.unload(close_session)
        webcam.stream(on_webcam_frame, [webcam, session, threshold, heatmap], [webcam_out, webcam_info],
                      stream_every=app_cfg.stream_every, time_limit=app_cfg.webcam_time_limit,
                      concurrency_limit=None, show_progress="hidden")  # webcams are limited by ModelHost
        webcam.clear(on_webcam_stop, session, webcam_info)
        add_camera.click(on_add_camera, [camera_text, session], [camera_text, camera_message])
        camera_text.submit(on_add_camera, [camera_text, session], [camera_text, camera_message])
        for slot, button in enumerate(remove_buttons):
            button.click(lambda s, slot=slot: s and s.remove_camera(slot), session, None)
        refresh.tick(camera_slots, [session, threshold, heatmap], slot_outputs, show_progress="hidden",
                     concurrency_limit=None)
        clip_go.click(on_clip, [clip_in, clip_views, threshold, heatmap],
                      [clip_label, clip_summary, clip_video, clip_timeline],
                      concurrency_limit=None)  # no Gradio queue: clip_gate runs, queues or turns requests away
        load.click(on_load_model, [weights_in, labels_in, segments_in, precision_in, device_in, engine_in,
                                   smoothing_in],
                   model_info, concurrency_limit=1)
    return demo


def launch(config: Config, *, auth: tuple[str, str] | None = None, prevent_thread_lock: bool = False,
           quiet: bool = False, host: ModelHost | None = None,
           login_throttle: LoginThrottle | None = None) -> tuple[gr.Blocks, ModelHost]:
    """Load the model, build the UI and serve it on ``app.host:app.port``; with ``auth``, login
    attempts go through ``login_throttle`` (a fresh :class:`~app.login.LoginThrottle` by default)."""
    host = host if host is not None else ModelHost(config)
    demo = build_ui(host, config)
    demo.queue(default_concurrency_limit=4)
    throttle = login_throttle if login_throttle is not None else LoginThrottle()
    middleware = [Middleware(LoginRateLimit, throttle=throttle)] if auth else []
    demo.launch(server_name=config.app.host, server_port=config.app.port, auth=auth,
                max_file_size=f"{config.app.max_upload_mb}mb", prevent_thread_lock=prevent_thread_lock,
                show_error=True, quiet=quiet, app_kwargs={"middleware": middleware})
    if not prevent_thread_lock:
        host.close()
    return demo, host
