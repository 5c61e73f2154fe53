"""Debian's Chromium driven by Playwright (never a downloaded browser), shared by the browser tests.

Screenshots go to ``artifacts/`` in the repository, where CI keeps them.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from tdn.config import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "artifacts"
TIMEOUT_MS = 60_000
APP_TITLE = "TDN live action recognition"
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 390, "height": 844}  # a phone held upright (CSS pixels)


@contextlib.contextmanager
def chromium(playwright, fake_camera: Path | None = None):
    """Headless Chromium with no traffic of its own; its fake camera plays ``fake_camera`` (a .y4m) in a loop."""
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    if fake_camera is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake_camera}"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        yield browser
    finally:
        browser.close()


@contextlib.contextmanager
def open_page(browser, url: str, viewport: dict[str, int] = DESKTOP):
    """A new tab (camera allowed) of ``viewport`` size on ``url``, once the app's title is shown."""
    context = browser.new_context(permissions=["camera"], viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_text(APP_TITLE).first.wait_for()
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@contextlib.contextmanager
def served_app(config):
    """``tdn app`` with ``config`` served in this process: yields ``(url, host)``, closes both after."""
    from app.ui import launch

    demo, host = launch(config, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{config.app.port}/", host
    finally:
        demo.close()
        host.close()
