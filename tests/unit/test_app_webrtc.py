"""The WebRTC webcam's pure parts: ICE server settings, capture-time stamps, the slow-camera note."""
from __future__ import annotations

import pytest

from app.tabs.webcam import TRAINED_FPS, frame_rate_note
from app.webrtc import CaptureClock, IceServer, ice_servers
from tdn.config import ConfigError, load_config

pytestmark = pytest.mark.unit


def app_settings(**values):
    return load_config(None, {f"app.{key}": value for key, value in values.items()}).app


def test_no_ice_servers_by_default_so_no_stun_or_turn_traffic():
    assert load_config().app.turn_url is None  # the shipped config.yaml too
    assert ice_servers(app_settings()) == []


@pytest.mark.parametrize("url", ["turn:relay.example:3478", "turns:relay.example:5349?transport=tcp",
                                 "turn:10.0.0.7", "turn:[::1]:3478?transport=udp"])
def test_a_turn_server_goes_to_both_ends(url):
    [server] = ice_servers(app_settings(turn_url=url, turn_username="cam", turn_credential="pw"))
    assert server == IceServer(url, "cam", "pw")
    assert server.to_browser() == {"urls": [url], "username": "cam", "credential": "pw"}


@pytest.mark.parametrize(("values", "message"), [
    ({"turn_url": "stun:stun.example:3478"}, r"'app.turn_url' must look like turn:host:3478"),
    ({"turn_url": "https://relay.example"}, r"'app.turn_url' must look like"),
    ({"turn_url": "turn:"}, r"'app.turn_url' must look like"),
    ({"turn_url": "turn://relay.example"}, r"'app.turn_url' must look like"),
    ({"turn_url": "turn:user:pw@relay.example"}, r"credentials go in app.turn_username"),
    ({"turn_url": "turn:relay.example:http"}, r"'app.turn_url' must be turn:host\[:port\]"),
    ({"turn_url": "turn:relay.example?transport=sctp"}, r"transport=udp\|tcp"),
    ({"turn_url": "turn:relay.example:3478"}, r"'app.turn_username' and 'app.turn_credential' are needed"),
    ({"turn_url": "turn:relay.example:3478", "turn_username": "cam"}, r"'app.turn_credential' are needed"),
    ({"turn_credential": "pw"}, r"'app.turn_credential' is set but 'app.turn_url' is not"),
])
def test_bad_turn_settings_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        ice_servers(app_settings(**{"turn_username": None, **values}))


def test_turn_settings_are_typed():
    with pytest.raises(ConfigError, match=r"'app.turn_url' must be str, got 3478"):
        app_settings(turn_url=3478)


def test_capture_clock_stamps_media_times_with_the_fastest_frames_offset():
    clock = CaptureClock()
    # (media time in the sender's clock, arrival unix time) -> capture time
    table = [((5.00, 100.30), 100.30),  # first frame: its own arrival
             ((5.04, 100.36), 100.34),  # 20 ms late: stamped when it was captured
             ((5.08, 100.37), 100.37),  # 10 ms faster than the first: the offset moves down...
             ((5.12, 100.41), 100.41)]  # ...and later frames keep it
    stamps = [clock.stamp(media, arrival=arrival) for (media, arrival), _ in table]
    assert stamps == pytest.approx([want for _, want in table])
    assert all(stamp <= arrival + 1e-9 for stamp, ((_, arrival), _) in zip(stamps, table))  # never after arrival


def test_a_camera_slower_than_training_gets_a_note_and_one_at_speed_none():
    assert frame_rate_note(TRAINED_FPS) == "" and frame_rate_note(0.9 * TRAINED_FPS) == ""
    note = frame_rate_note(10.0)
    assert "10.0 fps" in note and f"trained on {TRAINED_FPS:g} fps" in note and "2.5x" in note
    assert "0.0 fps" in frame_rate_note(0.0)
    # a model with a 0.1 s segment step sees the same segments from 10 fps up: no note at 10-30 fps
    assert frame_rate_note(10.0, 0.1) == "" and frame_rate_note(30.0, 0.1) == ""
    note = frame_rate_note(5.0, 0.1)
    assert "5.0 fps" in note and "from 10 fps up" in note and "2.0x" in note
