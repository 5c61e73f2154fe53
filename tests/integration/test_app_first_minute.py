"""The first minute of a new user, in Debian's Chromium: the intro names the bundled model's
classes and opens its card, an example clip gets a prediction in one click, the demo stream
plays as a camera with a label panel beside it, and the page works on a phone (390x844)
without sideways scrolling. Runs the app in this process on the bundled demo model.
Screenshots (desktop and phone) go to ``artifacts/first_minute_*.png``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from browser import CHROMIUM, PHONE, chromium, open_page, screenshot, served_app
from loopback import free_port
from tdn.api import DEMO_WEIGHTS
from tdn.config import load_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
    pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="the bundled demo model is not there"),
]
sync_api = pytest.importorskip("playwright.sync_api")

HORIZONTAL_OVERFLOW = "() => document.scrollingElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def app_server():
    cfg = load_config(overrides={"pipeline.backend": "cpu", "model.precision": "fp32", "app.port": free_port(),
                                 "app.refresh_s": 0.5})
    with served_app(cfg) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p, chromium(p) as browser:
        yield browser


def test_intro_names_the_models_classes_and_opens_its_card(browser, app_server):
    url, host = app_server
    labels = host.service.model.meta.labels
    assert len(labels) == 9
    with open_page(browser, url) as page:
        intro = page.locator("#intro").inner_text()
        assert "recognises 9 classes" in intro and "not human actions" in intro
        assert all(name in intro for name in labels), intro
        screenshot(page, "first_minute_desktop.png")
        page.locator("#model-card").get_by_text("About this model").click()
        page.locator("#model-about").get_by_text("Demo model: TDN-ResNet18").wait_for()
        # one entry per weights file, and T fixed to what this project's file stores
        page.locator("#model-weights input").click()
        options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
        assert [o for o in options if "tdn_r18_synth.pt" in o] == ["demo/tdn_r18_synth.pt (bundled demo)"], options
        page.keyboard.press("Escape")
        assert page.locator("#model-segments input").is_disabled()
        assert "stored in this file" in page.locator("#model-segments").inner_text()
        # a label file that does not fit the model: the reason shows under the model controls, the model stays
        page.locator("#model-panel").get_by_text("More model settings").click()
        page.locator("#model-labels input").click()
        page.get_by_role("option", name="kinetics400.txt").click()
        page.locator("#load-model").click()
        message = page.locator("#model-message")
        message.get_by_text("model not changed").wait_for()
        assert "400" in message.inner_text() and host.service.model.meta.labels == labels
        screenshot(page, "first_minute_model_error.png")


def test_example_clip_click_gives_a_prediction(browser, app_server):
    with open_page(browser, app_server[0]) as page:
        page.get_by_role("tab", name="Clip").click()
        page.locator("#clip-examples").get_by_text("moving_right.mp4").click()
        page.locator("#clip-summary").get_by_text("sliding windows").wait_for(timeout=180_000)
        page.locator("#clip-annotated video").wait_for()
        screenshot(page, "first_minute_example_clip.png")
        assert "moving right" in page.locator("#clip-summary").inner_text()


def test_demo_stream_button_plays_a_camera_with_labels_beside_it(browser, app_server):
    url, host = app_server
    with open_page(browser, url) as page:
        page.get_by_role("tab", name="Cameras").click()
        page.locator("#demo-stream").click()
        page.locator("#camera-message").get_by_text("added demo stream").wait_for()
        page.locator("#camera-info-0").get_by_text("live").first.wait_for()
        page.locator("#camera-view-0 img").wait_for()
        labels = page.locator("#camera-labels-0")
        labels.get_by_text("moving left").first.wait_for(timeout=120_000)  # the clip's class, a full name
        page.locator("#heatmap").get_by_text("RGB differences").click()
        page.locator("#camera-view-0").scroll_into_view_if_needed()
        screenshot(page, "first_minute_demo_stream.png")
        assert [s for s in host.service.streams() if s.startswith("demo stream")]
        page.locator("#camera-remove-0").click()
        page.locator("#camera-info-0").wait_for(state="hidden")


def test_phone_layout_has_no_sideways_scroll_and_a_usable_slider(browser, app_server):
    with open_page(browser, app_server[0], viewport=PHONE) as page:
        assert page.evaluate(HORIZONTAL_OVERFLOW) <= 0
        slider = page.locator("#threshold input[type=range]").bounding_box()
        assert slider["width"] >= 0.6 * PHONE["width"], slider
        screenshot(page, "first_minute_phone.png")
        for tab in ("Cameras", "Clip", "Webcam"):
            page.get_by_role("tab", name=tab).click()
            assert page.evaluate(HORIZONTAL_OVERFLOW) <= 0, tab
            assert "right panel" not in page.locator("body").inner_text()
        page.get_by_role("tab", name="Clip").click()
        page.locator("#clip-examples").get_by_text("rotating_clockwise.mp4").click()
        page.locator("#clip-summary").get_by_text("sliding windows").wait_for(timeout=180_000)
        assert page.evaluate(HORIZONTAL_OVERFLOW) <= 0
        screenshot(page, "first_minute_phone_clip.png")
