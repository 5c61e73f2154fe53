"""What the app accepts from a browser: camera sources, weights inside weights/, uploads, auth."""
from __future__ import annotations

import os

import pytest

from app.inputs import (AUTH_ENV, check_upload, default_camera_name, label_choices, parse_camera_name,
                        parse_camera_source, resolve_auth, resolve_in_weights, weights_choices)


@pytest.mark.parametrize("text, expected", [
    ("0", 0), (" 2 ", 2),
    ("rtsp://127.0.0.1:8554/test", "rtsp://127.0.0.1:8554/test"),
    ("RTSP://cam/live", "RTSP://cam/live"),
    ("http://user:pw@cam.local/video.mjpg", "http://user:pw@cam.local/video.mjpg"),
    ("https://cam.local/stream", "https://cam.local/stream"),
])
def test_camera_source_accepts_indices_and_stream_urls(text, expected):
    assert parse_camera_source(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "enter a camera"),
    ("/etc/passwd", "not a camera source"),
    ("weights/demo/tdn.pt", "not a camera source"),
    ("file:///etc/passwd", "not a camera source"),
    ("push", "not a camera source"),
    ("ftp://host/x", "not a camera source"),
    ("rtsp://", "has no host"),
    ("rtsp://u:secret@/x", "has no host"),
    ("rtsp://cam/a b", "contains spaces"),
    ("99", "out of range"),
])
def test_camera_source_refuses_files_and_malformed_input(text, message):
    with pytest.raises(ValueError, match=message):
        parse_camera_source(text)


def test_camera_names_default_to_host_and_path_without_credentials():
    assert default_camera_name("rtsp://viewer:s3cret@127.0.0.1:8554/test") == "127.0.0.1:8554/test"
    assert default_camera_name("http://cam.local/video.mjpg?user=a&password=b#x") == "cam.local/video.mjpg"
    assert default_camera_name("rtsp://[::1]:554/live/") == "[::1]:554/live"
    assert default_camera_name("rtsp://admin:pa/ss w@rd@127.0.0.1:8554/x") == "127.0.0.1:8554/x"
    assert default_camera_name(2) == "camera 2"
    assert parse_camera_name("  hall   door ") == "hall door" and parse_camera_name("") is None
    assert parse_camera_name("rtsp://u:pw@cam/x") == "rtsp://***@cam/x"
    with pytest.raises(ValueError, match="at most 60"):
        parse_camera_name("x" * 61)
    with pytest.raises(ValueError, match="control characters"):
        parse_camera_name("hall\x00door")


def test_refusal_masks_credentials():
    with pytest.raises(ValueError) as info:
        parse_camera_source("gopher://admin:s3cret@cam/x")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)


def test_auth_from_environment_wins_over_config():
    assert resolve_auth(None, {}) is None
    assert resolve_auth("a:b", {}) == ("a", "b")
    assert resolve_auth("a:b", {AUTH_ENV: "c:d:e"}) == ("c", "d:e")  # the password may hold ':'
    with pytest.raises(ValueError, match=r"\$TDN_APP_AUTH must be 'user:password'"):
        resolve_auth(None, {AUTH_ENV: "nopassword"})
    with pytest.raises(ValueError, match="app.auth"):
        resolve_auth(":pw", {})


def test_weights_choices_and_resolution_stay_inside_the_folder(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "m.pt").write_bytes(b"x")
    (tmp_path / "tdn_k400.pth.tar").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "k.txt").write_text("a\n")
    outside = tmp_path.parent / f"{tmp_path.name}_outside.pt"
    outside.write_bytes(b"x")
    os.symlink(outside, tmp_path / "link.pt")

    assert weights_choices(tmp_path) == ["demo/m.pt", "link.pt", "tdn_k400.pth.tar"]
    assert label_choices(tmp_path / "labels") == ["k.txt"]
    assert resolve_in_weights("demo/m.pt", tmp_path) == (tmp_path / "demo" / "m.pt").resolve()
    for escape in ["../" + outside.name, str(outside), "link.pt"]:
        with pytest.raises(ValueError, match="outside"):
            resolve_in_weights(escape, tmp_path)
    with pytest.raises(FileNotFoundError):
        resolve_in_weights("missing.pt", tmp_path)


def test_upload_must_be_a_video_inside_the_upload_folder_and_small_enough(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    clip = uploads / "clip.mp4"
    clip.write_bytes(b"\0" * 2048)
    assert check_upload(clip, upload_dir=uploads, max_mb=1) == clip.resolve()

    elsewhere = tmp_path / "clip.mp4"
    elsewhere.write_bytes(b"\0")
    with pytest.raises(ValueError, match="only uploaded files"):
        check_upload(elsewhere, upload_dir=uploads, max_mb=1)
    text = uploads / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        check_upload(text, upload_dir=uploads, max_mb=1)
    empty = uploads / "empty.webm"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        check_upload(empty, upload_dir=uploads, max_mb=1)
    big = uploads / "big.avi"
    big.write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(ValueError, match="the limit is 1 MB"):
        check_upload(big, upload_dir=uploads, max_mb=1)
