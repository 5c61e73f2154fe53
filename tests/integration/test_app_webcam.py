"""The Webcam tab over WebRTC in a real browser (Debian's Chromium, its fake camera playing a .y4m
made here by the project's generator) with the bundled demo model: frames reach the model at the
camera's rate, measured by the app's own stats; ICE stays on host candidates; Stop stops; a tab
that goes away gives its webcam slot back; a slow camera is called slow. Screenshots in artifacts/.
"""
from __future__ import annotations

import json
import queue
import re
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from browser import ARTIFACTS, CHROMIUM, chromium, open_page, screenshot, served_app
from loopback import free_port
from media import write_y4m
from pipelines.events import PredictionEvent, StatsEvent
from tdn.api import DEMO_WEIGHTS
from tdn.config import load_config
from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
    pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="the bundled demo model is not there"),
]
sync_api = pytest.importorskip("playwright.sync_api")

FPS_PATTERN = re.compile(r"(\d+\.\d) fps")
MIN_FPS = 20.0  # issue 14: at least this many frames per second reach the model from a 25 fps camera


def moving_left_y4m(path: Path, fps: int) -> Path:
    """8 s of the generator's "moving left" class (160x120), played by the fake camera in a loop."""
    rng = np.random.default_rng([11, 0, 0, 0])
    frames = render_clip(rng, CLASSES.index("moving left"), ClipSpec(seconds=8, fps=fps, webcam=False, pace_range=FULL_PACE))
    return write_y4m(path, list(frames), fps=fps)


@pytest.fixture(scope="module")
def app_server():
    """The app with the bundled demo model on a free port, in-process."""
    cfg = load_config(overrides={"pipeline.backend": "cpu", "app.port": free_port()})
    assert cfg.model.weights is None and cfg.app.turn_url is None  # the bundled model; no STUN/TURN
    with served_app(cfg) as served:
        yield served


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def camera_25fps(playwright, tmp_path_factory):
    with chromium(playwright, moving_left_y4m(tmp_path_factory.mktemp("webcam") / "left25.y4m", 25)) as browser:
        yield browser


def webcam_streams(host) -> list[str]:
    return [s for s in host.service.streams() if s.startswith("webcam")]


def wait_until(condition, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.2)  # polling interval; the outcome does not depend on it


def start(page) -> None:
    """Click Start and wait until the stream is live; fails with the tab's note if it says why not."""
    page.locator("#webcam-start").click()
    info = page.locator("#webcam-info")
    deadline = time.monotonic() + 60
    while not any(word in (text := info.inner_text()) for word in ("live", "⚠️")) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling interval; the outcome does not depend on it
    assert "live" in text, f"the webcam did not go live; the tab says: {text!r}"


def candidate_types(sdp: str) -> set[str]:
    return {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if line.startswith("a=candidate")}


def test_webcam_reaches_the_model_at_camera_speed_over_host_only_webrtc(camera_25fps, app_server):
    url, host = app_server
    with open_page(camera_25fps, url) as page:
        start(page)
        [stream] = webcam_streams(host)
        events: queue.Queue = queue.Queue()  # every prediction and stats event of the webcam, however fast
        unsubscribe = host.service.subscribe(lambda e: events.put(e) if e.stream == stream else None,
                                             kinds=("prediction", "stats"))
        top1: Counter[str] = Counter()
        service_fps, page_fps = [], []
        try:
            deadline = time.monotonic() + 180
            while (len(service_fps) < 12 or sum(top1.values()) < 40) and time.monotonic() < deadline:
                event = events.get(timeout=60)
                if isinstance(event, PredictionEvent):
                    top1[event.prediction.topk[0][0]] += 1
                elif isinstance(event, StatsEvent) and event.frames_read > 50:  # past the first seconds
                    service_fps.append(event.fps)
                    shown = FPS_PATTERN.search(page.locator("#webcam-info").inner_text())
                    if shown:
                        page_fps.append(float(shown.group(1)))
                if top1["moving left"] == 10:
                    screenshot(page, "app_webcam_webrtc.png")
        finally:
            unsubscribe()
        local = page.evaluate("window.tdnWebcam.pc.localDescription.sdp")
        remote = page.evaluate("window.tdnWebcam.pc.remoteDescription.sdp")
        screenshot(page, "app_webcam_webrtc_end.png")

    total = sum(top1.values())
    record = {"service_fps": service_fps, "page_fps": page_fps, "top1": dict(top1),
              "moving_left_share": top1["moving left"] / total if total else None}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "webcam_webrtc.json").write_text(json.dumps(record, indent=1))
    print("webcam over WebRTC:", record)
    assert total >= 40, f"predictions should keep arriving: {record}"
    # issue 15: the demo model calls the leftward square "moving left" at least 90 % of the time; the
    # model sees frames as captured (mirrored ones would read as "moving right")
    assert top1["moving left"] >= 0.9 * total, record
    assert statistics.median(service_fps) >= MIN_FPS, record
    assert page_fps and statistics.median(page_fps) >= MIN_FPS, record  # the page shows the same rate
    assert candidate_types(local) == {"host"} and candidate_types(remote) == {"host"}, (local, remote)


def test_stop_clears_the_view_and_frees_the_slot_and_a_closed_tab_frees_it_too(camera_25fps, app_server):
    url, host = app_server
    with open_page(camera_25fps, url) as page:
        start(page)
        page.locator("#webcam-annotated img").wait_for()
        [stream] = webcam_streams(host)
        page.locator("#webcam-stop").click()
        info = page.locator("#webcam-info")
        info.get_by_text("stopped").first.wait_for()
        wait_until(lambda: not webcam_streams(host), what="the webcam stream to close")
        page.locator("#webcam-annotated img").wait_for(state="detached")
        time.sleep(3 * host.config.app.refresh_s)  # a few refreshes later it still reads stopped
        text = info.inner_text()
        assert "stopped" in text and not FPS_PATTERN.search(text) and "live" not in text, text
        assert page.locator("#webcam-annotated img").count() == 0
        assert page.evaluate("window.tdnWebcam") is None
        screenshot(page, "app_webcam_stopped.png")
        assert stream not in host.service.streams()

        start(page)  # and it starts again; then the tab goes away without Stop
        assert len(webcam_streams(host)) == 1
    wait_until(lambda: not webcam_streams(host), timeout_s=120, what="the closed tab's webcam to be reclaimed")


def test_start_clicked_while_the_tab_opens_its_session_waits_for_it(camera_25fps, app_server, monkeypatch):
    """Start (and the Cameras tab's controls) stay disabled until the page's load event has opened the
    tab's session, so an early click (a busy server at start-up) is not answered with "still loading"
    but starts the webcam."""
    from app import ui

    opening = threading.Event()

    class SlowToOpen(ui.BrowserSession):
        def __init__(self, *args, **kwargs):
            opening.set()
            time.sleep(3.0)  # the load event's reply is late; the page is already shown
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ui, "BrowserSession", SlowToOpen)
    url, host = app_server
    with open_page(camera_25fps, url) as page:
        assert opening.wait(10), "the page's load event did not reach the server"
        assert page.locator("#webcam-start").is_disabled()
        start(page)  # Playwright's click waits for the button to be enabled
        assert len(webcam_streams(host)) == 1
        page.get_by_role("tab", name="Cameras").click()  # its controls were enabled by the same event
        assert page.locator("#add-camera").is_enabled() and page.locator("#demo-stream").is_enabled()
        assert page.locator("#camera-source textarea, #camera-source input").first.is_editable()
    wait_until(lambda: not webcam_streams(host), timeout_s=120, what="the closed tab's webcam to be reclaimed")


def test_a_camera_slower_than_training_is_called_slow(playwright, app_server, tmp_path):
    """The demo model (0.1 s segment step) sees the same segments from 10 fps up: a 5 fps camera is
    called slow, naming that rate."""
    url, host = app_server
    with chromium(playwright, moving_left_y4m(tmp_path / "left5.y4m", 5)) as browser, open_page(browser, url) as page:
        start(page)
        page.locator("#webcam-info").get_by_text("at every rate from 10 fps up").wait_for(timeout=90_000)
        screenshot(page, "app_webcam_slow_camera.png")
        fps = float(FPS_PATTERN.search(page.locator("#webcam-info").inner_text()).group(1))
        assert fps < 8, fps
