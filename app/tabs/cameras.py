"""Cameras tab: RTSP/HTTP/local cameras added by URL (and an optional name), one tile each,
refreshed on a timer. A tile shows its stream's state as a chip; only a live stream shows its
frame annotated, its label and its rates; a stopped or lost stream's last frame is greyed."""
from __future__ import annotations

import gradio as gr

from app import examples, views
from app.inputs import parse_camera_name, parse_camera_source
from app.sessions import BrowserSession, Camera, ModelHost
from app.tabs import VIEW_HEIGHT, PageControls
from pipelines.events import StatsEvent
from pipelines.masking import mask_credentials
from pipelines.service import RecognitionService
from tdn.config import Config

OUTPUTS_PER_SLOT = 5  # column, image, label panel, summary, Stop/Start/Retry button
ADD_SETTLE_S = 1.0  # how long adding a camera waits for it to go live or fail, to say which at once


def _tile(camera: Camera, service: RecognitionService, stats: dict[str, StatsEvent], threshold: float,
          heatmap: str, opacity: float) -> tuple:
    """(image, newest prediction or None, label panel title, summary) of one camera's tile; raises
    ValueError if its stream went meanwhile. No prediction (an empty label panel, titled with the
    stream's state) unless the stream is live."""
    if camera.stopped:
        image = None if camera.last_frame is None else views.stale_view(camera.last_frame, "stopped")
        return (image, None, views.label_title(None, threshold, "stopped"),
                f"{views.status_chip('stopped')} stopped by you; **Start** opens it again")
    if camera.stream_id is None or camera.stream_id not in stats:
        state = "failed" if camera.error else "connecting"
        return (None, None, views.label_title(None, threshold, state),
                f"{views.status_chip(state)} {mask_credentials(camera.error or 'opening')}")
    now = stats[camera.stream_id]
    newest, latest = service.latest_frame(camera.stream_id), service.latest(camera.stream_id)
    if now.state != "live":
        note = views.chip_state(now.state)
        if now.current_outage_s is not None:
            note += f": no frames for {now.current_outage_s:.0f} s"
        image = None if newest is None else views.stale_view(newest.image, note)
        return image, None, views.label_title(None, threshold, note), views.stream_summary(now, None, threshold)
    image = None if newest is None else views.annotate_latest(newest.image, latest, service.spec, heatmap=heatmap,
                                                              opacity=opacity, waiting="collecting frames")
    return image, latest, views.label_title(latest, threshold), views.stream_summary(now, latest, threshold)


def build(host: ModelHost, config: Config, page: PageControls, *, cluster_url: str | None = None) -> list[gr.Component]:
    """The Cameras tab, with ``cluster_url`` also listing the cameras of that cluster's front end;
    returns its controls that need the tab's session (disabled until it is open)."""
    app_cfg = config.app

    def on_add(text: str, name: str, session: BrowserSession | None):
        if session is None:
            return gr.update(), gr.update(), "⚠️ the page is still loading; try again"
        try:
            camera = session.add_camera(parse_camera_source(text), parse_camera_name(name))
        except (ValueError, FileNotFoundError) as exc:
            return gr.update(), gr.update(), f"⚠️ {mask_credentials(str(exc))}"
        if camera.error:
            session.remove_camera(len(session.cameras) - 1)
            return gr.update(), gr.update(), f"⚠️ {mask_credentials(camera.error)}"
        try:  # a refused connection, a 401 or a web page fails within this: say so next to the button
            status = host.service.source(camera.stream_id).wait_for_state({"live", "failed"}, ADD_SETTLE_S)
        except ValueError:  # the model was reloaded meanwhile: the tile shows how it goes
            return "", "", f"added {camera.name}"
        if status.state == "failed":
            return "", "", f"⚠️ added {camera.name}, but it failed: {status.detail}"
        return "", "", f"added {camera.name}"

    def action(camera: Camera, stats: dict[str, StatsEvent]) -> str:
        """What the tile's button does now: Start a stopped camera, Retry a failed one, else Stop."""
        if camera.stopped:
            return "Start"
        failed = camera.error is not None or (camera.stream_id in stats and stats[camera.stream_id].state == "failed")
        return "Retry" if failed else "Stop"

    def on_button(session: BrowserSession | None, slot: int):
        """Stop a running camera (keeping its newest frame to show greyed), start a stopped one, or
        open a failed one again."""
        if session is None or slot >= len(session.cameras):
            return gr.skip()
        camera = session.cameras[slot]
        if action(camera, host.service.stats()) == "Retry":
            session.stop_camera(slot)
        if camera.stopped:
            session.start_camera(slot)
            return gr.update(value="Stop")
        try:
            newest = host.service.latest_frame(camera.stream_id) if camera.stream_id else None
        except ValueError:  # already gone (model reloaded): nothing to keep
            newest = None
        session.stop_camera(slot, None if newest is None else newest.image)
        return gr.update(value="Start")

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
        """Per slot: (visible column, image, label panel, summary, button label) for ``app.max_cameras`` slots."""
        cameras = session.live_cameras() if session is not None else []
        if not cameras and (session is None or not session.camera_slots_shown):
            return [gr.skip()] * (OUTPUTS_PER_SLOT * app_cfg.max_cameras)  # nothing shown, nothing to show
        if session is not None:
            session.camera_slots_shown = len(cameras)
        service = host.service
        stats = service.stats()
        updates = []
        for slot in range(app_cfg.max_cameras):
            if slot >= len(cameras):
                updates += [gr.update(visible=False), gr.update(value=None), gr.update(value=None), gr.update(value=""),
                            gr.skip()]
                continue
            camera = cameras[slot]
            try:
                image, latest, title, summary = _tile(camera, service, stats, threshold, heatmap, opacity)
            except ValueError:  # removed or re-opened since the stats were read: the next tick shows it
                updates += [gr.skip()] * OUTPUTS_PER_SLOT
                continue
            updates += [gr.update(visible=True), gr.update(value=image),
                        gr.update(value=views.label_scores(latest), label=title),
                        gr.update(value=f"### {camera.name}\n{summary}"), gr.update(value=action(camera, stats))]
        return updates

    with gr.Tab("Cameras", elem_id="tab-cameras"):
        with gr.Row():
            source = gr.Textbox(label="Camera", placeholder="0, rtsp://user:pass@host:554/stream, http://…",
                                scale=4, interactive=False, elem_id="camera-source")
            name = gr.Textbox(label="Name (optional)", placeholder="default: host and path", max_length=60,
                              scale=2, elem_id="camera-name")
            add = gr.Button("Add camera", scale=1, interactive=False, elem_id="add-camera")
            demo = gr.Button("▶ Demo stream", scale=1, interactive=False, elem_id="demo-stream")
        message = gr.Markdown(elem_id="camera-message")
        slot_outputs, remove_buttons, toggle_buttons = [], [], []
        with gr.Row():
            for slot in range(app_cfg.max_cameras):
                with gr.Column(visible=False, min_width=280) as column:
                    image = gr.Image(show_label=False, height=VIEW_HEIGHT * 2 // 3, interactive=False,
                                     elem_id=f"camera-view-{slot}", buttons=["fullscreen"])
                    labels = gr.Label(num_top_classes=host.config.pipeline.topk, show_heading=False,
                                      label=views.label_title(None, 0.0), elem_id=f"camera-labels-{slot}")
                    summary = gr.Markdown(elem_id=f"camera-info-{slot}")
                    with gr.Row():
                        toggle = gr.Button("Stop", size="sm", elem_id=f"camera-toggle-{slot}")
                        remove = gr.Button("Remove", size="sm", elem_id=f"camera-remove-{slot}")
                slot_outputs += [column, image, labels, summary, toggle]
                remove_buttons.append(remove)
                toggle_buttons.append(toggle)
        refresh = gr.Timer(app_cfg.refresh_s)
        if cluster_url is not None:
            from app.cluster_view import cluster_panel  # plain HTTP to the cluster's front end

            cluster_panel(cluster_url, app_cfg.refresh_s)

    add.click(on_add, [source, name, page.session], [source, name, message])
    source.submit(on_add, [source, name, page.session], [source, name, message])
    for slot, (remove, toggle) in enumerate(zip(remove_buttons, toggle_buttons)):
        remove.click(lambda s, slot=slot: s and s.remove_camera(slot), page.session, None)
        toggle.click(lambda s, slot=slot: on_button(s, slot), page.session, toggle)
    demo.click(on_demo, page.session, message)
    refresh.tick(slots, [page.session, page.threshold, page.heatmap, page.opacity], slot_outputs,
                 show_progress="hidden", concurrency_limit=None)
    return [source, add, demo]  # the source's Enter adds a camera too
