"""The README's first command on a machine that has never run the app.

``make app`` (exactly what a new user types, with a free port) in a clean state: an empty
TMPDIR and HOME, no Gradio folders, no cache or config variables pointing anywhere else. The
page must come up and render in Debian's Chromium, and the log must be free of errors.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from browser import APP_TITLE, CHROMIUM, chromium, open_page, screenshot
from loopback import free_port
from tdn.config import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
]
sync_api = pytest.importorskip("playwright.sync_api")

# variables that point the app, Gradio or the libraries it loads at folders or caches a new machine lacks
_LEFTOVER_PREFIXES = ("GRADIO_", "XDG_", "TORCH_", "HF_", "MPLCONFIGDIR", "PYTORCH_", "TDN_")


def clean_environment(root: Path) -> dict[str, str]:
    """This process's environment as a new machine would have it: empty TMPDIR and HOME under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEFTOVER_PREFIXES)}
    for name in ("tmp", "home"):
        (root / name).mkdir(parents=True)
    env.update(TMPDIR=str(root / "tmp"), HOME=str(root / "home"))
    return env


def wait_until_served(url: str, app: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail at once, with the app's log, if the app exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.poll() is not None:
            pytest.fail(f"`make app` exited with {app.returncode} before serving:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)  # polling interval only; the deadline above is what bounds the test
    pytest.fail(f"`make app` did not serve {url} within {timeout:g} s:\n{log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen) -> None:
    """Terminate ``process`` and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_make_app_starts_and_serves_the_page_on_a_clean_machine(tmp_path):
    env = clean_environment(tmp_path / "machine")
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("w") as out:
        app = subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO_ROOT), "app", f"APP_ARGS=--port {port}"],
                               env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # make and the app in one process group
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_served(url, app, log, timeout=180)
        with sync_api.sync_playwright() as playwright, chromium(playwright) as browser, open_page(browser, url) as page:
            for tab in ("Webcam", "Cameras", "Clip"):
                sync_api.expect(page.get_by_role("tab", name=tab)).to_be_visible()
            screenshot(page, "first_run.png")
            assert APP_TITLE in page.title() or page.get_by_text(APP_TITLE).first.is_visible()
    finally:
        stop_group(app)
    text = log.read_text()
    assert "Traceback" not in text and "error" not in text.lower(), text[-3000:]
    # the app used the clean machine's temp folder (Gradio's upload folder lives there), nothing older
    assert (tmp_path / "machine" / "tmp" / "gradio").is_dir()
