"""The one credential-masking function, as a table."""
from __future__ import annotations

import pytest

from pipelines.masking import mask_credentials


@pytest.mark.parametrize("text,want", [
    ("rtsp://admin:s3cret@10.0.0.2:554/stream1", "rtsp://***@10.0.0.2:554/stream1"),
    ("rtsp://admin@10.0.0.2/live", "rtsp://***@10.0.0.2/live"),  # user only
    ("rtsp://admin:p@ss@cam/live", "rtsp://***@cam/live"),  # unescaped '@' in the password
    ("rtsp://admin:p%40ss@cam/live", "rtsp://***@cam/live"),
    ("https://u:pw@example.org/a.mjpg?x=1", "https://***@example.org/a.mjpg?x=1"),
    ("rtsp://10.0.0.2:554/stream1", "rtsp://10.0.0.2:554/stream1"),  # nothing to hide
    ("rtsp://cam/path/with@sign", "rtsp://cam/path/with@sign"),  # '@' after the host is not userinfo
    ("lost rtsp://a:b@h1/x and http://c:d@h2/y", "lost rtsp://***@h1/x and http://***@h2/y"),
    ("http://cam/video.cgi?user=admin&pwd=123&res=hd", "http://cam/video.cgi?user=***&pwd=***&res=hd"),
    ("http://cam/v?Password=abc#frag", "http://cam/v?Password=***#frag"),
    ("http://cam/v?token=abc;fps=5", "http://cam/v?token=***;fps=5"),
    ("camera 0", "camera 0"),
    ("/videos/me@home.mp4", "/videos/me@home.mp4"),  # a file path is not a URL
])
def test_mask_credentials(text, want):
    assert mask_credentials(text) == want


def test_masking_is_idempotent():
    once = mask_credentials("rtsp://u:p@h/x?password=q")
    assert mask_credentials(once) == once
