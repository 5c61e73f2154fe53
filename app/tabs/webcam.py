"""Webcam tab: the browser's camera streamed to the server, annotated frames back."""
from __future__ import annotations

import weakref

import gradio as gr

from app import views
from app.sessions import BrowserSession, ModelHost, StreamLimitError
from app.tabs import VIEW_HEIGHT, PageControls
from tdn.config import Config


def build(host: ModelHost, config: Config, page: PageControls) -> None:
    app_cfg = config.app
    # per tab: the prediction its label panel shows, so the panel is sent again only when that changes
    panel_shows: weakref.WeakKeyDictionary[BrowserSession, tuple[float | None, float]] = weakref.WeakKeyDictionary()

    def on_frame(image, session: BrowserSession | None, threshold: float, heatmap: str, opacity: float):
        if image is None or session is None:
            return gr.skip(), gr.skip(), gr.skip()
        frame = views.camera_view(image, mirrored=app_cfg.mirror_preview)
        service = host.service
        try:
            stream = session.webcam_stream()
        except StreamLimitError as exc:  # the next frame asks again
            return gr.skip(), gr.skip(), f"⚠️ {exc}"
        try:
            service.push_frame(stream, frame)
            latest = service.latest(stream)
            stats = service.stats().get(stream)
        except ValueError:  # the model was replaced between the two calls: next frame re-opens
            return gr.skip(), gr.skip(), gr.skip()
        shown = views.annotate_latest(frame, latest, service.spec, heatmap=heatmap, opacity=opacity,
                                      waiting=f"collecting frames ({host.config.pipeline.window_seconds:g} s window)")
        shows = (None if latest is None else latest.time, threshold)
        labels = gr.skip()
        if panel_shows.get(session) != shows:
            panel_shows[session] = shows
            labels = gr.update(value=views.label_scores(latest), label=views.label_title(latest, threshold))
        return shown, labels, views.stream_summary(stats, latest, threshold)

    def on_stop(session: BrowserSession | None):
        if session is not None:
            session.stop_webcam()
        return "webcam stopped"

    with gr.Tab("Webcam", elem_id="tab-webcam"):
        gr.Markdown("Your browser's camera, streamed to the server. The preview may be mirrored; "
                    "the model sees frames as the camera captured them (the annotated view).")
        with gr.Row():
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                              webcam_options=gr.WebcamOptions(mirror=app_cfg.mirror_preview),
                              height=VIEW_HEIGHT, elem_id="webcam")
            annotated = gr.Image(show_label=False, height=VIEW_HEIGHT, elem_id="webcam-annotated",
                                 buttons=["fullscreen"])
            labels = gr.Label(num_top_classes=host.config.pipeline.topk, show_heading=False,
                              label="waiting for the first prediction",
                              min_width=200, elem_id="webcam-labels")
        info = gr.Markdown(elem_id="webcam-info")

    webcam.stream(on_frame, [webcam, page.session, page.threshold, page.heatmap, page.opacity],
                  [annotated, labels, info],
                  stream_every=app_cfg.stream_every, time_limit=app_cfg.webcam_time_limit,
                  concurrency_limit=None, show_progress="hidden")  # webcams are limited by ModelHost
    webcam.clear(on_stop, page.session, info)
