"""Webcam tab: the browser's camera sent over WebRTC (:mod:`app.webrtc`) at the camera's own frame
rate into the tab's push stream, each frame stamped with its capture time; the annotated newest
frame and the stream's summary come back on a timer, as in the Cameras tab.

The page keeps the WebRTC connection in ``window.tdnWebcam``; Start makes an offer (after the
camera is allowed and ICE candidates are gathered), the server answers it, Stop closes both ends.
"""
from __future__ import annotations

import dataclasses
import json
import time
import weakref

import gradio as gr

from app import views
from app.sessions import BrowserSession, ModelHost, StreamLimitError
from app.tabs import VIEW_HEIGHT, PageControls
from app.webrtc import WebcamPeers, ice_servers
from tdn.config import Config

# The frame rate models without a segment step were trained at (TDN's Kinetics clips are 25 fps);
# the weights do not record it. A model with a segment step (the demo model) sees the same segment
# spans at every rate from 1 / step up (tdn.sampling), so that rate is its limit.
TRAINED_FPS = 25.0
SLOW_FPS_FRACTION = 0.9  # below this share of that rate the tab says the camera is too slow
FPS_SETTLE_S = 3.0  # the frame rate is judged once the stream has run this long
STOPPED = f"{views.status_chip('stopped')} webcam off"

# Ask for the camera, send it to the server (offer with every candidate, gathered first) and return
# the offer as JSON, or {"error": ...}. ``ICE_SERVERS`` is replaced by the configured servers.
_START_JS = """
async () => {
  const old = window.tdnWebcam;
  if (old) { old.pc.close(); old.stream.getTracks().forEach((t) => t.stop()); window.tdnWebcam = null; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia(
      {video: {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 30}}, audio: false});
    const preview = document.querySelector("#webcam-preview video");
    if (preview) { preview.srcObject = stream; }
    const pc = new RTCPeerConnection({iceServers: ICE_SERVERS});
    stream.getVideoTracks().forEach((track) => pc.addTrack(track, stream));
    window.tdnWebcam = {pc, stream};
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 5000);
    });
    return JSON.stringify({type: pc.localDescription.type, sdp: pc.localDescription.sdp});
  } catch (err) {
    return JSON.stringify({error: `${err.name}: ${err.message}`});
  }
}
"""

# Apply the server's answer, or end the local side when the server sent none.
_ANSWER_JS = """
async (answer) => {
  const link = window.tdnWebcam;
  if (!link) { return; }
  const reply = answer ? JSON.parse(answer) : null;
  if (reply && reply.type === "answer") {
    await link.pc.setRemoteDescription(reply);
  } else {
    link.pc.close(); link.stream.getTracks().forEach((t) => t.stop()); window.tdnWebcam = null;
  }
}
"""

_STOP_JS = """
() => {
  const link = window.tdnWebcam;
  if (link) { link.pc.close(); link.stream.getTracks().forEach((t) => t.stop()); window.tdnWebcam = null; }
  const preview = document.querySelector("#webcam-preview video");
  if (preview) { preview.srcObject = null; }
}
"""


def frame_rate_note(fps: float, segment_step_s: float = 0.0) -> str:
    """A warning when the camera's frames arrive too slowly for the segments the model was trained
    on (``segment_step_s``: the model's, see :mod:`tdn.sampling`), else ""."""
    slowest = 1 / segment_step_s if segment_step_s else TRAINED_FPS
    if fps >= SLOW_FPS_FRACTION * slowest:
        return ""
    trained = (f"the model sees the same segments at every rate from {slowest:g} fps up" if segment_step_s
               else f"the model was trained on {slowest:g} fps video")
    return (f"⚠️ The camera delivers {fps:.1f} fps; {trained}, so each segment's frames span "
            f"{slowest / max(fps, 1e-3):.1f}x more time and predictions are less reliable. Dim light slows many "
            "cameras; a busy browser or server drops frames too.")


@dataclasses.dataclass
class _TabWebcam:
    """What one tab's webcam is doing: ``note`` is shown while no stream runs."""
    note: str = STOPPED
    started: float | None = None  # time.monotonic() of the first frame, while running
    cleared: bool = False  # the page shows the cleared view already
    panel_shows: tuple[float | None, float] | None = None  # (prediction time, threshold) the label panel shows


def build(host: ModelHost, config: Config, page: PageControls) -> list[gr.Component]:
    """The Webcam tab; returns its controls that need the tab's session (disabled until it is open)."""
    app_cfg = config.app
    peers = WebcamPeers(ice_servers(app_cfg))
    tabs: weakref.WeakKeyDictionary[BrowserSession, _TabWebcam] = weakref.WeakKeyDictionary()
    start_js = _START_JS.replace("ICE_SERVERS", json.dumps([s.to_browser() for s in peers.servers], allow_nan=False))

    def tab_of(session: BrowserSession) -> _TabWebcam:
        if session not in tabs:
            tabs[session] = _TabWebcam()
            session.on_webcam_stop = lambda: peers.close(session.key, "the webcam was closed (no frames or tab gone)")
        return tabs[session]

    def on_offer(offer_json: str, session: BrowserSession | None):
        """Answer the page's offer; the answer box stays empty when the webcam cannot start."""
        if session is None:
            return "", "⚠️ the page is still loading; try again"
        tab = tab_of(session)
        try:
            offer = json.loads(offer_json)
        except ValueError:
            offer = {"error": "no offer came from the page"}
        if "error" in offer:
            tab.note = f"⚠️ the browser gave no camera: {offer['error']}"
            return "", tab.note
        session.stop_webcam()
        try:
            session.webcam_stream()  # takes a webcam slot now, so a full server says so before connecting
        except StreamLimitError as exc:
            tab.note = f"⚠️ {exc}"
            return "", tab.note

        def on_frame(image, t: float) -> None:
            try:
                host.service.push_frame(session.webcam_stream(), image, t)
            except StreamLimitError as exc:  # the service was replaced and the slots filled meanwhile
                tab.note = f"⚠️ {exc}"
            except ValueError:  # the model was replaced between the two calls: the next frame re-opens
                return
            if tab.started is None:
                tab.started = time.monotonic()

        def on_end(reason: str) -> None:
            tab.started = None
            tab.note = f"{views.status_chip('stopped')} {reason}"
            session.stop_webcam()

        try:
            answer = peers.answer(session.key, offer, on_frame=on_frame, on_end=on_end)
        except (ValueError, TimeoutError) as exc:
            session.stop_webcam()
            tab.note = f"⚠️ {exc}"
            return "", tab.note
        tab.note, tab.cleared = f"{views.status_chip('connecting')} waiting for the first frame", False
        return json.dumps(answer, allow_nan=False), tab.note

    def on_stop(session: BrowserSession | None):
        if session is not None:
            tab = tab_of(session)
            session.stop_webcam()
            # the next tick clears the view again: a tick that was under way when Stop came may land after it
            tab.note, tab.started, tab.cleared = STOPPED, None, False
        return None, gr.update(value=None, label=views.label_title(None, 0.0)), STOPPED

    def on_tick(session: BrowserSession | None, threshold: float, heatmap: str, opacity: float):
        tab = tabs.get(session) if session is not None else None
        if tab is None:
            return gr.skip(), gr.skip(), gr.skip()  # never started
        stream = session.webcam_id()
        service = host.service
        stats = service.stats().get(stream) if stream is not None else None
        if stats is None:
            if tab.cleared:
                return gr.skip(), gr.skip(), gr.skip()
            tab.cleared, tab.panel_shows = True, None
            # stopped or not yet admitted: no stale frame, label or rate
            return None, gr.update(value=None, label=views.label_title(None, threshold)), tab.note
        tab.cleared = False  # a stream runs: when it stops, the next tick clears the view
        try:
            newest = service.latest_frame(stream)
            latest = service.latest(stream)
        except ValueError:  # removed since the stats were read: the next tick shows it
            return gr.skip(), gr.skip(), gr.skip()
        if newest is None:
            return gr.skip(), gr.skip(), tab.note
        shown = views.annotate_latest(newest.image, latest, service.spec, heatmap=heatmap, opacity=opacity,
                                      waiting=f"collecting frames ({host.config.pipeline.window_seconds:g} s window)")
        labels = gr.skip()  # the panel is sent again only when its prediction or the threshold changed
        if tab.panel_shows != (shows := (None if latest is None else latest.time, threshold)):
            tab.panel_shows = shows
            labels = gr.update(value=views.label_scores(latest), label=views.label_title(latest, threshold))
        summary = views.stream_summary(stats, latest, threshold)
        if tab.started is not None and time.monotonic() - tab.started >= FPS_SETTLE_S:
            note = frame_rate_note(stats.fps, service.model.meta.segment_step_s)
            summary += f"\n\n{note}" if note else ""
        return shown, labels, summary

    mirror = "transform: scaleX(-1);" if app_cfg.mirror_preview else ""
    with gr.Tab("Webcam", elem_id="tab-webcam"):
        gr.Markdown("Your browser's camera, sent to the server over WebRTC at the camera's frame rate. "
                    + ("The preview is mirrored like a selfie; " if app_cfg.mirror_preview else "")
                    + "the model sees frames as the camera captured them (the annotated view).")
        with gr.Row():
            start = gr.Button("Start webcam", variant="primary", interactive=False, elem_id="webcam-start")
            stop = gr.Button("Stop", elem_id="webcam-stop")
        with gr.Row():
            gr.HTML(f'<video autoplay muted playsinline style="width: 100%; max-height: {VIEW_HEIGHT}px; '
                    f'background: #222; {mirror}"></video>', elem_id="webcam-preview")
            annotated = gr.Image(show_label=False, height=VIEW_HEIGHT, elem_id="webcam-annotated",
                                 interactive=False, buttons=["fullscreen"])
            labels = gr.Label(num_top_classes=host.config.pipeline.topk, show_heading=False,
                              label=views.label_title(None, 0.0), min_width=200, elem_id="webcam-labels")
        info = gr.Markdown(STOPPED, elem_id="webcam-info")
        offer = gr.Textbox(visible=False)
        answer = gr.Textbox(visible=False)
        refresh = gr.Timer(app_cfg.refresh_s)

    start.click(None, None, offer, js=start_js).then(
        on_offer, [offer, page.session], [answer, info], show_progress="hidden").then(
        None, answer, None, js=_ANSWER_JS)
    stop.click(None, None, None, js=_STOP_JS)
    stop.click(on_stop, page.session, [annotated, labels, info], show_progress="hidden")
    refresh.tick(on_tick, [page.session, page.threshold, page.heatmap, page.opacity], [annotated, labels, info],
                 show_progress="hidden", concurrency_limit=None)
    return [start]
