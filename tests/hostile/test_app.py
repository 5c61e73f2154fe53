"""The app and the stream CLI against hostile input: secrets in URLs (every way a password or
token can be written), login floods, abandoned and greedy sessions, odd camera text. Each test
checks the exact outcome and that the process and the other sessions carry on.

Kinds: userinfo forms, query parameters, fragment parameters, percent-encoded forms (one table);
secrets through ``tdn stream --json``/logs, exception messages and the page's texts; a login flood,
a parallel login burst, many login clients; abandoned webcams, the global stream cap, vanished
tabs' cameras; odd camera text (empty, whitespace, very long, control characters, file://,
javascript:, local paths, non-ASCII digits); file-route traversal and unauthenticated API calls.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch

from app.inputs import MAX_SOURCE_CHARS, parse_camera_source
from app.login import FREE_ATTEMPTS, LoginThrottle
from app.sessions import BrowserSession, ModelHost, StreamLimitError
from app.views import stream_summary
from loopback import free_port
from pipelines.masking import mask_credentials
from pipelines.sources import open_source
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from cli.main import main as tdn_main
from tdn.config import load_config
from tdn.model import TDN, TDNConfig

SECRET = "Zq9sEcr3t"  # never in any output
FRAME = np.zeros((48, 64, 3), np.uint8)


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=4, num_classes=3))
    path = tmp_path_factory.mktemp("hostile") / "tiny.pt"
    return save_model(path, model, ModelMeta(labels=["a", "b", "c"], input_size=64, resize_short=72))


def tiny_config(weights, **overrides):
    return load_config(overrides={"model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32",
                                  "pipeline.backend": "cpu", "pipeline.open_timeout_s": 1.0, **overrides})


@pytest.fixture
def host(tiny_weights):
    host = ModelHost(tiny_config(tiny_weights, **{"app.max_streams": 6, "app.webcam_sessions": 4,
                                                  "app.idle_timeout_s": 30.0}))
    yield host
    host.close()


def dead_url(secret: str = SECRET) -> str:
    """An RTSP URL with credentials on a loopback port nothing listens on (refused at once)."""
    return f"rtsp://admin:{secret}@127.0.0.1:{free_port()}/live?token={secret}"


# -- secrets in URLs -------------------------------------------------------------------------
S = SECRET
SECRET_FORMS = {
    "userinfo": [
        f"rtsp://admin:{S}@10.0.0.2:554/stream1",
        f"rtsp://{S}@cam/live",  # a token as the user
        f"rtsp://admin:p@ss{S}@cam/live",  # unescaped '@'
        f"rtsp://admin:pa/ss{S}@cam:554/live",  # unescaped '/'
        f"rtsp://admin:pa/{S}/x@cam",
        f"rtsp://admin:pa#{S}@cam/live",  # unescaped '#'
        f"rtsp://admin:pa?{S}@cam/live",  # unescaped '?'
        f"rtsp://admin:pa {S}@cam/live",  # a space
        f"rtsp://admin:pa:{S}@cam/live",  # a second ':'
        f"rtsp://admin:{S}\t@cam/live",  # a tab
        f"rtsp://admin:a@b/c#d?e f:{S}@cam:554/live?x=1",  # all of them
        f"rtsp://admin:1234/{S}@host/x",  # digits, then '/'
        f"RTSP://ADMIN:{S}@CAM/LIVE",
        f"http://u:{S}@[::1]:8080/v.mjpg",  # IPv6 host
        f"http://u:{S}@cam",  # no path
        f"cannot open 'rtsp://u:{S}@cam/x': refused",  # quoted inside a message
        f"lost rtsp://a:{S}@h1/x and http://c:{S}@h2/y",  # two URLs
        f"rtsp://u:{S}@cam/live\nTraceback: rtsp://u:{S}@cam/live",  # several lines
        f"rtsp://u:{S}@cam: connection refused",
        f"rtsp://u:{S}@/x",  # no host
    ],
    "query": [
        f"http://cam/v?api_key={S}",
        f"http://cam/v?fps=5&access_token={S}&res=hd",
        f"http://cam/v?apiKey={S}",
        f"http://cam/v?x-api-key={S}",
        f"http://cam/v?X-Amz-Signature={S}&X-Amz-Credential={S}",
        f"http://cam/v;jsessionid={S}",
        f"http://cam/v?client_secret={S}",
        f"http://cam/v?next=/a?token={S}",  # a second '?'
        f"http://cam/v?sig={S}",
        f"http://cam/v?AUTH={S}",
        f"http://cam/v?passwd={S}&pwd={S}&pass={S}",
        f"http://cam/v?refresh-token={S}",
    ],
    "fragment": [
        f"http://cam/v#access_token={S}&token_type=bearer",
        f"rtsp://user:{S}@cam/live?token={S}#secret={S}",
    ],
    "percent-encoded": [
        f"rtsp://admin:p%40{S}@cam/live",
        f"http://cam/v?api%5Fkey={S}",
        f"http://cam/v?%70assword={S}",
    ],
}


@pytest.mark.parametrize("text", [t for forms in SECRET_FORMS.values() for t in forms])
def test_no_form_of_a_url_secret_survives_masking(text):
    masked = mask_credentials(text)
    assert SECRET not in masked and "***" in masked
    assert mask_credentials(masked) == masked  # idempotent


@pytest.mark.parametrize("text", ["rtsp://cam/path/with@sign", "http://cam/video?fps=25&res=hd#frag", "camera 0",
                                  "/videos/me@home.mp4", "http://cam/v?user=&mode=live"])
def test_masking_leaves_plain_text_alone(text):
    assert mask_credentials(text) == text


def test_stream_cli_json_and_logs_hide_url_secrets(tiny_weights, capfd, caplog):
    url = dead_url()
    with caplog.at_level(logging.DEBUG):
        code = tdn_main(["stream", "--source", url, "--source", f"ftp://u:{SECRET}@h/x?api_key={SECRET}", "--json",
                         "--weights", str(tiny_weights), "--device", "cpu", "--precision", "fp32", "--backend", "cpu",
                         "--set", "pipeline.open_timeout_s=1", "--duration", "60"])
    out, err = capfd.readouterr()
    assert code == 1
    events = [line for line in out.splitlines() if line.startswith("{")]
    assert any('"status": "failed"' in e and "127.0.0.1" in e for e in events), out
    assert any('"status": "failed"' in e and "unsupported source ftp://***@h/x?api_key=***" in e for e in events), out
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert SECRET not in out and SECRET not in err and SECRET not in logged


def test_exception_messages_hide_url_secrets():
    for text in [f"ftp://u:{SECRET}@h/x", f"rtsp://u:{SECRET}@/x", f"rtsp://u:{SECRET}@h/a b?token={SECRET}"]:
        with pytest.raises(ValueError) as refused:
            parse_camera_source(text)
        assert SECRET not in str(refused.value)
    with pytest.raises(ValueError) as unsupported:
        open_source(f"gopher://u:{SECRET}@h/?access_token={SECRET}")
    assert SECRET not in str(unsupported.value) and "gopher://***@h/" in str(unsupported.value)


def test_page_texts_hide_url_secrets(host):
    session = BrowserSession(host, max_cameras=4)
    for url in [dead_url(), f"http://cam.invalid:{free_port()}/v?api_key={SECRET}",
                f"rtsp://admin:pa/ss{SECRET}@127.0.0.1:{free_port()}/x"]:
        camera = session.add_camera(parse_camera_source(url))
        assert SECRET not in camera.name and SECRET not in camera.stream_id
    wait_for(lambda: all(s.state == "failed" for s in host.service.stats().values()), what="the sources to fail")
    shown = [stream_summary(stats, None, 0.0) for stats in host.service.stats().values()]
    shown += [c.name for c in session.live_cameras()] + list(host.service.streams())
    assert all(SECRET not in text for text in shown) and any("failed" in text for text in shown)
    session.close()


# -- login -----------------------------------------------------------------------------------
class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def served(tiny_weights):
    from app.ui import launch

    clock = ManualClock()
    cfg = tiny_config(tiny_weights, **{"app.port": free_port()})
    demo, host = launch(cfg, auth=("viewer", "pw-123"), prevent_thread_lock=True, quiet=True,
                        login_throttle=LoginThrottle(clock=clock, max_hold_s=0))  # refusals only: held
    # attempts wait on the event loop's real clock (tests/integration/test_app_login_browser.py)
    try:
        yield f"http://127.0.0.1:{cfg.app.port}", clock
    finally:
        demo.close()
        host.close()


def login(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("/login", data={"username": "viewer", "password": password})


def test_login_flood_waits_longer_each_time_then_the_right_password_works(served):
    base, clock = served
    with httpx.Client(base_url=base, timeout=60) as client:
        assert [login(client, "wrong").status_code for _ in range(FREE_ATTEMPTS)] == [400] * FREE_ATTEMPTS
        waits = []
        for _ in range(5):
            flood = [login(client, "wrong") for _ in range(20)]  # all refused without a password check
            assert {r.status_code for r in flood} == {429}
            wait = int(flood[0].headers["Retry-After"])
            assert "too many login attempts" in flood[0].json()["detail"]
            waits.append(wait)
            clock.now += wait
            assert login(client, "wrong").status_code == 400  # one guess per wait
        assert waits == [1, 2, 4, 8, 16]
        assert login(client, "pw-123").status_code == 429  # the right password must wait too
        clock.now += 32
        assert login(client, "pw-123").status_code == 200
        assert client.get("/config").status_code == 200  # logged in; the server lives on
        assert [login(client, "wrong").status_code for _ in range(FREE_ATTEMPTS)] == [400] * FREE_ATTEMPTS  # reset


def test_parallel_login_burst_gets_only_the_free_attempts(served):
    base, clock = served
    clock.now += 10_000  # a fresh record for this client

    def attempt(_):
        with httpx.Client(base_url=base, timeout=60) as client:
            return login(client, "wrong").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, range(40)))
    assert codes.count(400) == FREE_ATTEMPTS and codes.count(429) == 40 - FREE_ATTEMPTS
    clock.now += 10_000
    with httpx.Client(base_url=base, timeout=60) as client:
        assert login(client, "pw-123").status_code == 200


def test_login_records_stay_bounded_and_per_client():
    clock = ManualClock()
    throttle = LoginThrottle(clock=clock, max_clients=100)
    for i in range(10_000):
        throttle.attempt(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    for _ in range(FREE_ATTEMPTS):
        assert throttle.attempt("192.0.2.1") == 0.0
    assert throttle.attempt("192.0.2.1") == 1.0 and throttle.attempt("192.0.2.2") == 0.0  # others unaffected


def test_server_files_and_api_refuse_hostile_requests(served):
    base, clock = served
    with httpx.Client(base_url=base, timeout=60) as anonymous:
        assert anonymous.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0,
                                                               "session_hash": "x"}).status_code == 401
        assert anonymous.get("/config").status_code == 401
    clock.now += 10_000
    with httpx.Client(base_url=base, timeout=60) as client:
        assert login(client, "pw-123").status_code == 200
        for path in ["../../../../etc/passwd", "/etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "config.yaml"]:
            assert client.get(f"/gradio_api/file={path}").status_code in (403, 404), path
        assert client.get("/config").status_code == 200


# -- sessions --------------------------------------------------------------------------------
def test_abandoned_webcams_are_reclaimed_for_new_users(host):
    idle = host.config.app.idle_timeout_s
    abandoned = [BrowserSession(host, 4) for _ in range(4)]
    for session in abandoned:
        host.service.push_frame(session.webcam_stream(), FRAME)
    fifth, sixth = BrowserSession(host, 4), BrowserSession(host, 4)
    with pytest.raises(StreamLimitError, match=r"all 4 webcam slots are in use \(app.webcam_sessions\)"):
        fifth.webcam_stream()
    for session in abandoned[1:]:  # three tabs stop sending frames; the first keeps streaming
        session.webcam_seen -= 2 * idle
    host.close_idle()
    assert abandoned[0].webcam_stream() in host.service.streams()
    for newcomer in (fifth, sixth):
        host.service.push_frame(newcomer.webcam_stream(), FRAME)
    assert len(host.service.streams()) == 3
    host.service.push_frame(abandoned[1].webcam_stream(), FRAME)  # a reclaimed tab that comes back gets a slot again


def test_the_server_caps_live_streams_across_sessions(host):
    sessions = [BrowserSession(host, 4) for _ in range(3)]
    for session in sessions[:2]:
        session.webcam_stream()
        session.add_camera(dead_url())
        session.add_camera(dead_url())
    assert len(host.service.streams()) == 6
    with pytest.raises(StreamLimitError, match=r"already runs 6 live streams, its limit \(app.max_streams\)"):
        sessions[2].add_camera(dead_url())
    assert sessions[2].cameras == []
    with pytest.raises(StreamLimitError, match="app.max_streams"):
        sessions[2].webcam_stream()
    sessions[0].close()
    assert sessions[2].add_camera(dead_url()).stream_id in host.service.streams()
    assert all(c.stream_id in host.service.streams() for c in sessions[1].cameras)  # the others live on


def test_a_vanished_tabs_cameras_close_and_reopen_when_it_returns(host):
    gone, present = BrowserSession(host, 4), BrowserSession(host, 4)
    gone.add_camera(dead_url())
    [kept] = [present.add_camera(dead_url())]
    gone.seen -= 2 * host.config.app.idle_timeout_s
    host.close_idle()
    [closed] = gone.cameras
    assert closed.stream_id is None and closed.error == "closed while the page was away"
    assert host.service.streams() == [kept.stream_id]
    [back] = gone.live_cameras()  # the page refreshes again
    assert back.stream_id in host.service.streams() and back.error is None


ODD_CAMERA_TEXT = {
    "": "enter a camera",
    "   \t\n": "enter a camera",
    "x" * (MAX_SOURCE_CHARS + 1): f"is {MAX_SOURCE_CHARS + 1} characters long; at most {MAX_SOURCE_CHARS}",
    "rtsp://cam/live\x00.mp4": "contains control characters",
    "\x1b[31mrtsp://cam": "contains control characters",
    "rtsp://cam/\u200blive": "contains control characters",
    "file:///etc/passwd": "not a camera source: 'file:///etc/passwd'",
    "javascript:alert(1)": "not a camera source: 'javascript:alert(1)'",
    "/etc/passwd": "not a camera source: '/etc/passwd'",
    "../../etc/passwd": "not a camera source",
    "²": "not a camera source",
    "64": "camera index 64 is out of range",
    "-1": "camera index -1 is out of range",
    "rtsp://": "has no host",
    "rtsp://cam/a b": "contains spaces",
}


@pytest.mark.parametrize("text", list(ODD_CAMERA_TEXT), ids=lambda t: repr(t[:20]))
def test_odd_camera_text_is_refused_and_other_sessions_live_on(host, text):
    other = BrowserSession(host, 4)
    webcam = other.webcam_stream()
    with pytest.raises(ValueError) as refused:
        parse_camera_source(text)
    message = str(refused.value)
    assert ODD_CAMERA_TEXT[text] in message and len(message) < 400
    assert host.service.streams() == [webcam]
    host.service.push_frame(webcam, FRAME)
    assert host.service.latest_frame(webcam) is not None
