"""Honest live status and the login, in a real browser (Debian's Chromium through Playwright).

Cameras on a loopback RTSP server that is killed and restarted: the tile's chip follows the
stream (live, reconnecting, live, stopped), a stream that is down shows no label and no rates
but its outage, and the outage adds no dropped windows; bad sources fail at once with their own
reason; cameras that differ only in user name get different names. The login page names the
app and slows a client's wrong passwords. Screenshots go to ``artifacts/live_*.png``.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from browser import APP_TITLE, CHROMIUM, chromium, open_page, screenshot
from hostile_servers import HostileServer
from loopback import RtspServer, free_port
from tdn.checkpoint import save_model
from tdn.config import load_config
from tdn.meta import ModelMeta
from tdn.model import TDN, TDNConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
]
sync_api = pytest.importorskip("playwright.sync_api")

LABELS = ["moving left", "moving right", "still"]
WINDOW_S, T = 1.0, 4
BUFFER_S = 3.0  # the outage below outlasts the buffer: the case that used to count dropped windows
OUTAGE_S = BUFFER_S + 1.0
WAIT_S = 60.0  # generous bound on any state change


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=T, num_classes=len(LABELS)))
    return save_model(tmp_path_factory.mktemp("live") / "tiny.pt", model,
                      ModelMeta(labels=LABELS, input_size=64, resize_short=72))


def serve(weights: Path, **kwargs):
    from app.ui import launch

    cfg = load_config(overrides={
        "model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32", "pipeline.backend": "cpu",
        "pipeline.window_seconds": WINDOW_S, "pipeline.buffer_seconds": BUFFER_S, "pipeline.open_timeout_s": 10.0,
        "pipeline.read_timeout_s": 2.0, "pipeline.reconnect_initial_s": 0.25, "pipeline.reconnect_max_s": 1.0,
        "app.port": free_port(), "app.refresh_s": 0.5,
        "app.threshold": 0.0,  # a random model's top score is low: claim it anyway, so tiles show a label
    })
    demo, host = launch(cfg, prevent_thread_lock=True, quiet=True, **kwargs)
    return f"http://127.0.0.1:{cfg.app.port}/", demo, host


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    with chromium(playwright) as browser:
        yield browser


def wait_until(condition, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def add_camera(page, source: str, name: str = "") -> None:
    page.locator("#camera-source textarea, #camera-source input").first.fill(source)
    page.locator("#camera-name textarea, #camera-name input").first.fill(name)
    page.locator("#add-camera").click()


def scheduler_skipped(host, stream: str) -> int:
    """The stream's dropped windows that its scheduler skipped (the rest: the engine replaced
    windows while inference was behind, which a busy machine may do at any time)."""
    dropped = host.service.stats()[stream].dropped_windows
    return dropped - host.service.engine.stats().streams[stream].dropped


def chip(page, slot: int, state: str):
    return page.locator(f"#camera-info-{slot} .status-chip-{state}")


def test_camera_states_outage_and_stop_are_shown_as_they_are(browser, weights):
    url, demo, host = serve(weights)
    server = RtspServer(free_port(), user="viewer", password="s3cret-pw").start()
    try:
        with open_page(browser, url) as page, HostileServer("html") as html:
            page.get_by_role("tab", name="Cameras").click()
            add_camera(page, server.url_with("viewer", "s3cret-pw"))
            chip(page, 0, "live").wait_for()
            info = page.locator("#camera-info-0")
            info.get_by_text(re.compile("|".join(LABELS))).first.wait_for()

            # same host and path, another user: a name of its own; the server refuses the user at once
            add_camera(page, server.url_with("guest", "other-pw"))
            chip(page, 1, "failed").wait_for()
            page.locator("#camera-info-1").get_by_text("401 unauthorized").wait_for()
            page.locator("#camera-labels-1").get_by_text("no prediction: failed").wait_for()  # not "waiting"
            titles = [page.locator(f"#camera-info-{i} h3").inner_text() for i in (0, 1)]
            assert titles == [f"127.0.0.1:{server.port}/test", f"127.0.0.1:{server.port}/test #2"], titles

            refused = f"rtsp://127.0.0.1:{free_port()}/nothing"
            started = time.monotonic()
            add_camera(page, refused, "back door")
            page.locator("#camera-message").get_by_text("connection refused").wait_for()
            refused_after = time.monotonic() - started
            page.locator("#camera-info-2").get_by_text("connection refused").wait_for()
            tile_after = time.monotonic() - started
            chip(page, 2, "failed").wait_for()
            assert page.locator("#camera-info-2 h3").inner_text() == "back door"
            # the message says it only if the source failed within ADD_SETTLE_S (1 s) of being added;
            # with open_timeout_s = 10 s the old retries kept it "connecting" for 10 s. The page's own
            # round trips on a loaded machine come on top (printed, not asserted)
            print(f"refused URL: reason next to the button {refused_after:.2f} s, in the tile {tile_after:.2f} s "
                  "after the click")

            add_camera(page, html.url("http"))
            page.locator("#camera-info-3").get_by_text("not a video: the server answers with text/html").wait_for()
            page.locator("#camera-toggle-3").get_by_text("Retry").wait_for()  # a failed camera offers a retry
            screenshot(page, "live_cameras_states.png")
            content = page.content()
            assert "s3cret-pw" not in content and "other-pw" not in content and "guest" not in content

            # outage: the server goes away for longer than the buffer holds
            [stream] = [s for s in host.service.streams() if s.startswith(f"127.0.0.1:{server.port}/test [")]
            skipped_before = scheduler_skipped(host, stream)
            server.stop()
            chip(page, 0, "reconnecting").wait_for()
            info.get_by_text("no label while the stream is down").wait_for()
            page.locator("#camera-labels-0").get_by_text("no prediction: reconnecting").wait_for()
            info.get_by_text(re.compile(r"down for \d+\.\d s now")).wait_for()
            text = info.inner_text()
            assert "fps" not in text and "predictions/s" not in text and not any(label in text for label in LABELS)
            down = host.service.stats()[stream]
            assert down.fps == 0 and down.prediction_rate == 0 and down.outages == 1, down
            screenshot(page, "live_camera_reconnecting.png")
            wait_until(lambda: (host.service.stats()[stream].current_outage_s or 0) >= OUTAGE_S, "a long outage")
            server.start()
            chip(page, 0, "live").wait_for()
            info.get_by_text(re.compile("|".join(LABELS))).first.wait_for()
            info.get_by_text(re.compile(r"1 outage, \d+\.\d s without frames")).wait_for()
            after = host.service.stats()[stream]
            assert after.outages == 1 and after.current_outage_s is None and after.outage_s >= OUTAGE_S, after
            # the old count added a skipped window for every grid step of the outage (about 16 here)
            outage_windows = after.outage_s / (WINDOW_S / T)
            skipped = scheduler_skipped(host, stream) - skipped_before
            assert skipped < outage_windows / 2, (skipped, outage_windows, after)
            print(f"outage {after.outage_s:.1f} s ({outage_windows:.0f} grid steps): {skipped} windows skipped")
            screenshot(page, "live_camera_recovered.png")

            page.locator("#camera-toggle-0").click()
            chip(page, 0, "stopped").wait_for()
            assert stream not in host.service.streams()
            text = info.inner_text()
            assert "fps" not in text and not any(label in text for label in LABELS)
            page.locator("#camera-toggle-0").get_by_text("Start").wait_for()
            page.locator("#camera-labels-0").get_by_text("no prediction: stopped").wait_for()
            screenshot(page, "live_camera_stopped.png")
            page.locator("#camera-toggle-0").click()
            chip(page, 0, "live").wait_for()
    finally:
        server.stop()
        demo.close()
        host.close()


def test_login_page_names_the_app_and_slows_wrong_passwords(browser, weights):
    """Eight quick wrong passwords through the login page: the first three are answered at once,
    each later one only after its wait (0.25 s here, doubling), and the page keeps saying
    "Incorrect Credentials"; the right password after them waits its turn, then logs in."""
    from app.login import FREE_ATTEMPTS, LoginThrottle

    throttle = LoginThrottle(base_delay_s=0.25)
    url, demo, host = serve(weights, auth=("viewer", "pw-123"), login_throttle=throttle)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_label("username").wait_for()
        page.get_by_role("heading", name=APP_TITLE).wait_for()
        page.get_by_text(f"After {FREE_ATTEMPTS} wrong passwords").wait_for()

        def attempt(password: str) -> tuple[int, float, float]:
            """(status, when the click was made, when the answer came), monotonic s."""
            page.get_by_label("username").fill("viewer")
            page.get_by_label("password").fill(password)
            clicked = time.monotonic()
            with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST",
                                      timeout=120_000) as answer:
                page.get_by_role("button", name="Login").click()
            return answer.value.status, clicked, time.monotonic()

        answers = [attempt(f"wrong-{i}") for i in range(8)]
        print("wrong logins (status, s to answer):", [(code, round(end - start, 2)) for code, start, end in answers])
        assert [code for code, _, _ in answers] == [400] * 8
        page.get_by_text("Incorrect Credentials").wait_for()
        # after n attempts the next is answered no sooner than delay_after(n) after the n-th was made
        for n in range(FREE_ATTEMPTS, 8):
            assert answers[n][2] - answers[n - 1][1] >= throttle.delay_after(n), (n, answers)
        screenshot(page, "live_login_slowed.png")

        code, _, answered = attempt("pw-123")
        assert code == 200 and answered - answers[-1][1] >= throttle.delay_after(8)
        page.get_by_text(APP_TITLE).first.wait_for()
        page.get_by_role("tab", name="Cameras").wait_for()
    finally:
        context.close()
        demo.close()
        host.close()
