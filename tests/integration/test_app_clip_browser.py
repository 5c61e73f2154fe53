"""The Clip tab in a real browser with the bundled demo model, on a two-part clip made by the
project's generator (4 s moving right, then 4 s moving left): one progress bar, a headline that
names both segments, a timeline that shows them, and clicking the timeline seeks the video
(the playhead follows). Screenshots go to ``artifacts/``."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from browser import CHROMIUM, chromium, open_page, screenshot
from loopback import free_port
from tdn.api import DEMO_WEIGHTS
from tdn.config import load_config
from tdn.synth import CLASSES, FULL_PACE, ClipSpec, render_clip
from tdn.video import write_video

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (make system-deps)"),
    pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="the bundled demo model is not there"),
]
sync_api = pytest.importorskip("playwright.sync_api")
HEADLINE = re.compile(r"^moving right 0-([\d.]+) s, then moving left ([\d.]+)-8 s$")


def two_part_clip(path: Path) -> Path:
    parts = [render_clip(np.random.default_rng([5, i]), CLASSES.index(motion), ClipSpec(seconds=4, fps=25, webcam=False, pace_range=FULL_PACE))
             for i, motion in enumerate(("moving right", "moving left"))]
    write_video(path, np.concatenate(parts), 25)
    return path


def test_two_part_clip_headline_timeline_and_seeking(tmp_path):
    from app.ui import launch

    clip = two_part_clip(tmp_path / "right_then_left.mp4")
    cfg = load_config(overrides={"pipeline.backend": "cpu", "pipeline.threshold": 0.5, "app.port": free_port()})
    demo, host = launch(cfg, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as playwright, chromium(playwright) as browser, \
                open_page(browser, f"http://127.0.0.1:{cfg.app.port}/") as page:
            page.get_by_role("tab", name="Clip").click()
            with page.expect_file_chooser() as chooser:
                page.locator("#clip-upload").get_by_text("Click to Upload").click()
            chooser.value.set_files(str(clip))
            page.locator(f"#clip-upload a[href$='/{clip.name}']").wait_for()
            # Every progress text the page renders, with the number of bars at that moment: the scoring
            # stage of this 8 s clip can pass in a fraction of a second, too briefly to wait for on screen.
            page.evaluate("""() => {
                window.tdnProgressSeen = [];
                new MutationObserver(() => {
                    const bars = document.querySelectorAll('.progress-level-inner');
                    bars.forEach(bar => window.tdnProgressSeen.push([bars.length, bar.closest('#clip-annotated') !== null,
                                                                      bar.textContent]));
                }).observe(document.body, {subtree: true, childList: true, characterData: true});
            }""")
            page.locator("#clip-predict").click()

            headline = page.locator("#clip-summary h3")
            headline.wait_for()
            seen = page.evaluate("window.tdnProgressSeen")
            scoring = [text for _, _, text in seen
                       if re.search(r"scoring windows: [\d.]+ s of the clip · about \d+ s left", text)]
            assert scoring, seen  # the bar showed the stage and the time left
            assert all(count == 1 and on_video for count, on_video, _ in seen), seen  # one bar, where the video goes
            match = HEADLINE.match(headline.inner_text().strip())
            assert match, headline.inner_text()
            assert match.group(1) == match.group(2) and 3.0 <= float(match.group(1)) <= 5.0  # the change is at 4 s
            summary = page.locator("#clip-summary").inner_text()
            assert "Whole clip, TDN test protocol (1x1 views)" in summary

            bands = page.locator("#clip-timeline svg.tdn-timeline g.tdn-segment")
            assert bands.count() == 2
            assert [bands.nth(i).get_attribute("data-label") for i in range(2)] == ["moving right", "moving left"]
            video = page.locator("#clip-annotated video")
            video.wait_for()
            page.wait_for_function("() => document.querySelector('#clip-annotated video').readyState >= 1")
            screenshot(page, "app_clip_segments.png")

            # click the middle of the second band: the video seeks there and the playhead moves with it
            start, end = (float(bands.nth(1).get_attribute(k)) for k in ("data-start", "data-end"))
            bands.nth(1).locator("rect").click()
            page.wait_for_function("() => document.querySelector('#clip-annotated video').currentTime > 0")
            seeked = video.evaluate("v => v.currentTime")
            assert start + 0.2 * (end - start) < seeked < end - 0.2 * (end - start), (start, end, seeked)
            playhead = page.locator("#clip-timeline svg.tdn-timeline")
            assert float(playhead.get_attribute("data-playhead")) == pytest.approx(seeked, abs=0.1)
            screenshot(page, "app_clip_seeked.png")

            # the playhead follows the video: seek from the video's side, then play
            playhead_at = "+document.querySelector('#clip-timeline svg.tdn-timeline').dataset.playhead"
            video.evaluate("v => { v.muted = true; v.currentTime = 1.0; }")
            page.wait_for_function(f"() => Math.abs({playhead_at} - 1) < 0.05")
            video.evaluate("v => v.play()")
            page.wait_for_function(f"() => {playhead_at} > 1.2")
            video.evaluate("v => v.pause()")
    finally:
        demo.close()
        host.close()
