"""The Gradio UI: Webcam, Cameras and Clip tabs over one shared model, a model panel and overlay
settings. Each area of the page is a module of :mod:`app.tabs`; pure frame functions live in
:mod:`app.views`, per-tab state in :mod:`app.sessions`, input checks in :mod:`app.inputs`; this
module composes the page, owns the browser sessions and serves it.

The page opens with what the loaded model recognises (its classes, its card), the model panel
and the overlay settings, then the tabs. Every user-triggered error becomes a message in the
page, beside the control that caused it where there is one; the server keeps serving other tabs.
"""
from __future__ import annotations

import weakref

import gradio as gr
from starlette.middleware import Middleware

from app import views
from app.login import LoginRateLimit, LoginThrottle, login_page_message
from app.sessions import BrowserSession, ModelHost
from app.tabs import PageControls, cameras, clip, model, webcam
from pipelines.overlay import HEATMAP_OPACITY
from tdn.config import Config

CACHE_MAX_AGE_S = 3600  # Gradio's copies of uploads and outputs are deleted after this
# Page styles: the heat-map legend, and a phone-width page (390 px) without sideways scrolling.
APP_CSS = """
.heat-legend { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.heat-legend-bar { flex: 1 1 auto; min-width: 60px; height: 12px; border-radius: 3px; }
@media (max-width: 640px) {
  .gradio-container { padding-left: 6px !important; padding-right: 6px !important; }
}
"""
APP_TITLE = "TDN live action recognition"


def build_ui(host: ModelHost, config: Config, *, cluster_url: str | None = None) -> gr.Blocks:
    """The app's ``gr.Blocks``; ``host`` holds the model service shared by all tabs; with
    ``cluster_url`` the Cameras tab also lists the cameras of that cluster (:mod:`app.cluster_view`)."""
    # Gradio session hash -> its tab's session, for unload; an entry goes when Gradio drops the tab's state
    sessions: weakref.WeakValueDictionary[str, BrowserSession] = weakref.WeakValueDictionary()

    def open_session(request: gr.Request) -> tuple:
        """The tab's session, and its controls enabled: a click before this would find no session."""
        session = BrowserSession(host, config.app.max_cameras)
        sessions[request.session_hash] = session
        return session, *[gr.update(interactive=True)] * len(session_controls)

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

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False,
                   delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as demo:
        session = gr.State(None, delete_callback=forget_session)
        gr.Markdown(f"# {APP_TITLE}")
        intro = gr.Markdown(model.intro(host), elem_id="intro")
        with gr.Accordion("About this model", open=False, elem_id="model-card"):
            about = gr.Markdown(model.about(host), elem_id="model-about")
        model_info = gr.Markdown(model.summary(host), elem_id="model-info")
        model.build(host, config, [model_info, intro, about])
        with gr.Row(elem_id="overlay-settings"):
            threshold = gr.Slider(0.0, 1.0, value=config.app.threshold, step=0.01, min_width=260,
                                  label="Threshold (a top score below it is \"uncertain\")", elem_id="threshold")
            heatmap = gr.Radio(views.HEATMAP_CHOICES, value="none", label="Heat map", min_width=260, elem_id="heatmap")
            with gr.Column(min_width=260):
                opacity = gr.Slider(0.0, 1.0, value=HEATMAP_OPACITY, step=0.05, label="Heat map opacity",
                                    elem_id="heatmap-opacity")
                gr.HTML(views.heatmap_legend_html(), elem_id="heatmap-legend")
        page = PageControls(session=session, threshold=threshold, heatmap=heatmap, opacity=opacity)
        session_controls = [*webcam.build(host, config, page),
                            *cameras.build(host, config, page, cluster_url=cluster_url)]
        clip.build(host, config, page)
        demo.load(open_session, outputs=[session, *session_controls])
        demo.unload(close_session)
    return demo


def launch(config: Config, *, auth: tuple[str, str] | None = None, prevent_thread_lock: bool = False,
           quiet: bool = False, host: ModelHost | None = None,
           login_throttle: LoginThrottle | None = None,
           cluster_url: str | None = None) -> tuple[gr.Blocks, ModelHost]:
    """Load the model, build the UI and serve it on ``app.host:app.port``; with ``auth``, login
    attempts go through ``login_throttle`` (a fresh :class:`~app.login.LoginThrottle` by default);
    ``cluster_url``: a cluster front end whose cameras the Cameras tab lists."""
    own_host = host is None
    host = ModelHost(config) if own_host else host
    try:
        demo = build_ui(host, config, cluster_url=cluster_url)
        demo.queue(default_concurrency_limit=4)
        throttle = login_throttle if login_throttle is not None else LoginThrottle()
        middleware = [Middleware(LoginRateLimit, throttle=throttle)] if auth else []
        demo.launch(server_name=config.app.host, server_port=config.app.port, auth=auth,
                    auth_message=login_page_message(APP_TITLE, throttle.base_delay_s),
                    max_file_size=f"{config.app.max_upload_mb}mb", prevent_thread_lock=prevent_thread_lock,
                    show_error=True, quiet=quiet, app_kwargs={"middleware": middleware}, css=APP_CSS)
    except BaseException:  # Ctrl-C or a port in use while starting: the host's compile must end first
        if own_host:
            host.close()
        raise
    if not prevent_thread_lock:
        host.close()
    return demo, host
