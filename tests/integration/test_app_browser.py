"""The app in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

The app runs in this process on a free 127.0.0.1 port with a tiny random TDN (labels of the
synthetic motion classes); Chromium's fake camera plays a generated ``.y4m`` whose left half
is red and right half blue, with a square moving across it. Screenshots go to ``artifacts/``.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from browser import CHROMIUM, TIMEOUT_MS, chromium, open_page, screenshot
from loopback import RtspServer, free_port
from media import write_not_a_video, write_video, write_y4m
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from tdn.config import load_config
from tdn.model import TDN, TDNConfig

LABELS = ["moving left", "moving right", "moving up", "moving down", "rotating clockwise",
          "rotating counterclockwise", "approaching", "receding", "still"]
LABEL_PATTERN = re.compile("|".join(re.escape(name) for name in LABELS))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
]
sync_api = pytest.importorskip("playwright.sync_api")


def half_and_half_frames(n: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """Left half red, right half blue, a white square moving right: mirroring shows at once."""
    frames = []
    for i in range(n):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : width // 2] = (220, 30, 30)
        frame[:, width // 2:] = (30, 30, 220)
        x = (i * 3) % (width - 12)
        frame[26:38, x:x + 12] = 255
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app_browser")


@pytest.fixture(scope="module")
def app_server(media_dir):
    """The app on a free port, in-process, with a tiny TDN (T=4, 64 px, one block per stage).
    Heartbeats every 2 s (Gradio's default 15 s) so a closed tab is noticed sooner."""
    from app.ui import launch

    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_HEARTBEAT_INTERVAL", "2")

    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=4, num_classes=len(LABELS)))
    weights = save_model(media_dir / "tiny.pt", model, ModelMeta(labels=LABELS, input_size=64, resize_short=72))
    cfg = load_config(overrides={
        "model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32",
        "pipeline.backend": "cpu", "pipeline.window_seconds": 1.0, "pipeline.open_timeout_s": 3.0,
        "app.port": free_port(), "app.refresh_s": 0.5,
        "app.threshold": 0.0,  # a random model is never sure: claim its top class, so the label shows
    })
    demo, host = launch(cfg, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{cfg.app.port}/", host
    finally:
        demo.close()
        host.close()
        mp.undo()


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:  # one per module: Playwright's sync API does not nest
        yield p


def upload_clip(page, path: Path) -> None:
    """Upload through the file chooser, as a person would (the box's click opens it)."""
    with page.expect_file_chooser() as chooser:
        page.locator("#clip-upload").get_by_text("Click to Upload").click()
    chooser.value.set_files(str(path))
    # uploaded: the box links to the server's copy (the name itself may be drawn as stem + extension)
    page.locator(f"#clip-upload a[href$='/{path.name}']").wait_for(timeout=TIMEOUT_MS)


def start_webcam(page) -> None:
    page.locator("#webcam-start").click()  # WebRTC; more webcam tests in test_app_webcam.py


@pytest.fixture(scope="module")
def browser(playwright, media_dir):
    with chromium(playwright, write_y4m(media_dir / "fake_camera.y4m", half_and_half_frames(50), fps=25)) as browser:
        yield browser


@pytest.fixture
def page(browser, app_server):
    with open_page(browser, app_server[0]) as page:
        yield page


def test_webcam_shows_label_and_annotated_frame_and_model_sees_unmirrored_frames(page, app_server):
    host = app_server[1]
    page.locator("#heatmap").get_by_text("S-TDM response").click()
    start_webcam(page)
    page.locator("#webcam-info").get_by_text(LABEL_PATTERN).first.wait_for()
    page.locator("#webcam-annotated img").wait_for()
    screenshot(page, "app_webcam.png")

    webcam_streams = [s for s in host.service.streams() if s.startswith("webcam")]
    assert len(webcam_streams) == 1
    frame = host.service.latest_frame(webcam_streams[0]).image
    left, right = frame[:, : frame.shape[1] // 2].mean(axis=(0, 1)), frame[:, frame.shape[1] // 2:].mean(axis=(0, 1))
    assert left[0] > left[2] + 60, f"left half should be red as captured, got RGB {left}"
    assert right[2] > right[0] + 60, f"right half should be blue as captured, got RGB {right}"

    page.close()  # closing the tab removes its stream from the shared service
    deadline = time.monotonic() + 120
    while webcam_streams[0] in host.service.streams() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert webcam_streams[0] not in host.service.streams()


def test_clip_upload_shows_prediction_and_timeline(page, media_dir):
    clip = write_video(media_dir / "clip.mp4", half_and_half_frames(60), fps=25)
    page.get_by_role("tab", name="Clip").click()
    upload_clip(page, clip)
    page.locator("#clip-predict").click()
    page.locator("#clip-summary").get_by_text("sliding windows").wait_for()
    page.locator("#clip-label").get_by_text(LABEL_PATTERN).first.wait_for()
    page.locator("#clip-timeline canvas, #clip-timeline svg").first.wait_for()
    page.locator("#clip-annotated video").wait_for()
    screenshot(page, "app_clip.png")
    assert re.search(r"\d+ sliding windows", page.locator("#clip-summary").inner_text())

    # a file that is not a video: a message naming it, and the app goes on serving
    page.locator("#clip-upload button[aria-label='Clear']").click()
    upload_clip(page, write_not_a_video(media_dir / "broken.mp4"))
    page.locator("#clip-predict").click()
    page.locator("#clip-summary").get_by_text(re.compile(r"broken\.mp4.*(cannot|not|no )")).wait_for()
    screenshot(page, "app_clip_error.png")
    from gradio.utils import get_upload_folder

    message = page.locator("#clip-summary").inner_text()
    assert "broken.mp4" in message and get_upload_folder() not in message  # the name, not the server's folders


def test_rtsp_camera_goes_live_with_masked_credentials_and_bad_sources_show_messages(page, app_server):
    server = RtspServer(free_port(), user="viewer", password="s3cret-pw").start()
    try:
        page.get_by_role("tab", name="Cameras").click()
        source = page.locator("#camera-source textarea, #camera-source input").first

        source.fill("/etc/passwd")
        page.locator("#add-camera").click()
        page.locator("#camera-message").get_by_text("not a camera source").wait_for()

        source.fill(server.url_with("viewer", "s3cret-pw"))
        page.locator("#add-camera").click()
        info = page.locator("#camera-info-0")
        info.get_by_text("live").first.wait_for()
        info.get_by_text(LABEL_PATTERN).first.wait_for()
        page.locator("#camera-view-0 img").wait_for()
        page.locator("#heatmap").get_by_text("RGB differences").click()

        dead = f"rtsp://127.0.0.1:{free_port()}/nothing"
        source.fill(dead)
        page.locator("#add-camera").click()
        page.locator("#camera-info-1").get_by_text("failed").first.wait_for()
        screenshot(page, "app_cameras.png")

        assert "s3cret-pw" not in page.content()
        assert re.search(r"\d+\.\d fps", info.inner_text())
        page.locator("#camera-remove-1").click()
        page.locator("#camera-info-1").wait_for(state="hidden")
        assert len([s for s in app_server[1].service.streams() if "nothing" in s]) == 0
    finally:
        server.stop()
