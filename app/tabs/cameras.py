"""Cameras tab: RTSP/HTTP/local cameras added by URL, one tile each, refreshed on a timer."""
from __future__ import annotations

import gradio as gr

from app import examples, views
from app.inputs import parse_camera_source
from app.sessions import BrowserSession, ModelHost
from app.tabs import VIEW_HEIGHT, PageControls
from pipelines.masking import mask_credentials
from tdn.config import Config

SLOT_OUTPUTS = 4  # per camera slot: column, image, label panel, summary


def build(host: ModelHost, config: Config, page: PageControls, *, cluster_url: str | None = None) -> None:
    """With ``cluster_url``, the tab also lists the cameras of that cluster's front end."""
    app_cfg = config.app

    def on_add(text: str, session: BrowserSession | None):
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

    def on_demo(session: BrowserSession | None):
        """The shipped demo clip as a looping camera (:mod:`app.examples`)."""
        if session is None:
            return "⚠️ the page is still loading; try again"
        try:
            camera = session.add_camera(str(examples.DEMO_STREAM), name=examples.DEMO_STREAM_NAME, loop=True)
        except (ValueError, FileNotFoundError) as exc:
            return f"⚠️ {exc}"
        if camera.error:
            session.remove_camera(len(session.cameras) - 1)
            return f"⚠️ {camera.error}"
        return f"added {camera.name}: a synthetic clip of the demo model's classes, looping"

    def slots(session: BrowserSession | None, threshold: float, heatmap: str, opacity: float) -> list:
        """Per slot: (visible column, annotated image, label panel, summary) for ``app.max_cameras`` slots."""
        cameras = session.live_cameras() if session is not None else []
        if not cameras and (session is None or not session.camera_slots_shown):
            return [gr.skip()] * (SLOT_OUTPUTS * app_cfg.max_cameras)  # nothing shown, nothing to show: send nothing
        if session is not None:
            session.camera_slots_shown = len(cameras)
        service = host.service
        stats = service.stats()
        updates = []
        for slot in range(app_cfg.max_cameras):
            if slot >= len(cameras):
                updates += [gr.update(visible=False), gr.update(value=None), gr.update(value=None), gr.update(value="")]
                continue
            camera = cameras[slot]
            title = f"### {camera.name}\n"
            if camera.stream_id is None or camera.stream_id not in stats:
                updates += [gr.update(visible=True), gr.update(value=None), gr.update(value=None),
                            gr.update(value=title + f"⚠️ {mask_credentials(camera.error or 'not open')}")]
                continue
            try:
                newest = service.latest_frame(camera.stream_id)
                latest = service.latest(camera.stream_id)
            except ValueError:  # removed or re-opened since the stats were read: the next tick shows it
                updates += [gr.skip()] * SLOT_OUTPUTS
                continue
            image = None
            if newest is not None:
                image = views.annotate_latest(newest.image, latest, service.spec, heatmap=heatmap, opacity=opacity,
                                              waiting="collecting frames")
            updates += [gr.update(visible=True), gr.update(value=image),
                        gr.update(value=views.label_scores(latest), label=views.label_title(latest, threshold)),
                        gr.update(value=title + views.stream_summary(stats[camera.stream_id], latest, threshold))]
        return updates

    with gr.Tab("Cameras", elem_id="tab-cameras"):
        with gr.Row():
            source = gr.Textbox(label="Camera", placeholder="0, rtsp://user:pass@host:554/stream, http://…",
                                scale=4, elem_id="camera-source")
            add = gr.Button("Add camera", scale=1, elem_id="add-camera")
            demo = gr.Button("▶ Demo stream", scale=1, elem_id="demo-stream")
        message = gr.Markdown(elem_id="camera-message")
        slot_outputs, remove_buttons = [], []
        with gr.Row():
            for slot in range(app_cfg.max_cameras):
                with gr.Column(visible=False, min_width=280) as column:
                    image = gr.Image(show_label=False, height=VIEW_HEIGHT * 2 // 3, interactive=False,
                                     elem_id=f"camera-view-{slot}", buttons=["fullscreen"])
                    labels = gr.Label(num_top_classes=host.config.pipeline.topk, show_heading=False,
                                      label="waiting for the first prediction", elem_id=f"camera-labels-{slot}")
                    summary = gr.Markdown(elem_id=f"camera-info-{slot}")
                    remove = gr.Button("Remove", size="sm", elem_id=f"camera-remove-{slot}")
                slot_outputs += [column, image, labels, summary]
                remove_buttons.append(remove)
        refresh = gr.Timer(app_cfg.refresh_s)
        if cluster_url is not None:
            from app.cluster_view import cluster_panel  # plain HTTP to the cluster's front end

            cluster_panel(cluster_url, app_cfg.refresh_s)

    add.click(on_add, [source, page.session], [source, message])
    source.submit(on_add, [source, page.session], [source, message])
    demo.click(on_demo, page.session, message)
    for slot, button in enumerate(remove_buttons):
        button.click(lambda s, slot=slot: s and s.remove_camera(slot), page.session, None)
    refresh.tick(slots, [page.session, page.threshold, page.heatmap, page.opacity], slot_outputs,
                 show_progress="hidden",
                 concurrency_limit=None)
