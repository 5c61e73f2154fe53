"""Per-tab sessions over one shared service: own streams, limits, clean-up, and re-attaching
after the model panel replaces the service."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from app.sessions import BrowserSession, ModelHost
from loopback import free_port
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from tdn.config import load_config
from tdn.engines import engine_installed
from tdn.export import ONNX_PARTS
from tdn.model import TDN, TDNConfig


@pytest.fixture
def host(tmp_path):
    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=4, num_classes=3))
    weights = save_model(tmp_path / "tiny.pt", model, ModelMeta(labels=["a", "b", "c"], input_size=64, resize_short=72))
    cfg = load_config(overrides={"model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32",
                                 "pipeline.backend": "cpu", "pipeline.open_timeout_s": 1.0})
    host = ModelHost(cfg)
    yield host
    host.close()


def test_each_tab_gets_its_own_webcam_stream_and_closing_removes_it(host):
    one, two = BrowserSession(host, max_cameras=2), BrowserSession(host, max_cameras=2)
    a, b = one.webcam_stream(), two.webcam_stream()
    assert a != b and one.webcam_stream() == a
    host.service.push_frame(a, np.zeros((48, 64, 3), np.uint8))
    assert host.service.latest_frame(a) is not None and host.service.latest_frame(b) is None
    one.close()
    assert a not in host.service.streams() and b in host.service.streams()
    one.close()  # twice is harmless


def test_camera_limit_and_removal(host):
    session = BrowserSession(host, max_cameras=1)
    dead = f"rtsp://user:pw@127.0.0.1:{free_port()}/none"
    camera = session.add_camera(dead)
    assert camera.error is None and camera.stream_id in host.service.streams()
    assert "pw" not in camera.name and "pw" not in camera.stream_id
    with pytest.raises(ValueError, match="at most 1 cameras"):
        session.add_camera(dead)
    session.remove_camera(0)
    assert session.cameras == [] and camera.stream_id not in host.service.streams()


def test_cameras_differing_only_in_user_name_get_distinct_names_without_credentials(host):
    session = BrowserSession(host, max_cameras=3)
    port = free_port()
    first = session.add_camera(f"rtsp://alice:pw1@127.0.0.1:{port}/cam")
    second = session.add_camera(f"rtsp://bob:pw2@127.0.0.1:{port}/cam")
    named = session.add_camera(f"rtsp://carol:pw3@127.0.0.1:{port}/cam", "hall door")
    assert [c.name for c in session.cameras] == [f"127.0.0.1:{port}/cam", f"127.0.0.1:{port}/cam #2", "hall door"]
    assert len({first.stream_id, second.stream_id, named.stream_id}) == 3
    shown = " ".join([c.name for c in session.cameras] + host.service.streams())
    assert not any(secret in shown for secret in ("alice", "bob", "carol", "pw1", "pw2", "pw3"))
    session.close()


def test_a_stopped_camera_keeps_its_tile_and_frame_until_started_again(host):
    session = BrowserSession(host, max_cameras=1)
    camera = session.add_camera(f"rtsp://127.0.0.1:{free_port()}/none")
    stream = camera.stream_id
    last = np.zeros((48, 64, 3), np.uint8)
    session.stop_camera(0, last)
    assert camera.stopped and camera.last_frame is last and stream not in host.service.streams()
    assert session.live_cameras() == [camera] and camera.stream_id is None  # a refresh does not re-open it
    session.start_camera(0)
    assert not camera.stopped and camera.last_frame is None and camera.stream_id in host.service.streams()
    session.close()


def test_reloading_the_model_swaps_the_service_and_sessions_reattach(host, tmp_path):
    session = BrowserSession(host, max_cameras=2)
    old_service = host.service
    webcam = session.webcam_stream()
    session.add_camera(f"rtsp://127.0.0.1:{free_port()}/none")

    host.reload({"num_segments": 4}, {"smoothing": 5})
    assert host.generation == 1 and host.service is not old_service
    assert old_service.streams() == []  # the old service was closed with its streams
    assert host.config.pipeline.smoothing == 5
    assert session.webcam_stream() in host.service.streams()
    assert session.webcam_stream() == webcam  # same name, now on the new service
    [camera] = session.live_cameras()
    assert camera.generation == 1 and camera.stream_id in host.service.streams()

    current = host.service
    with pytest.raises(FileNotFoundError):
        host.reload({"weights": str(tmp_path / "missing.pt")}, {})
    assert host.service is current and host.generation == 1  # a failed load keeps the running model


@pytest.mark.skipif(not engine_installed("openvino"), reason="needs the openvino extra")
def test_closing_the_app_at_once_waits_for_its_background_compile(host):
    """Ctrl-C right after start: OpenVINO aborts the process if it exits while a graph compiles."""
    config = dataclasses.replace(host.config, model=dataclasses.replace(host.config.model, engine="openvino"))
    started = ModelHost(config)
    started.close()
    assert started.service.model.compiled_parts == set(ONNX_PARTS)


@pytest.mark.skipif(not engine_installed("openvino"), reason="needs the openvino extra")
def test_an_onnx_engine_is_compiled_when_the_app_loads_it_not_on_the_first_window(host):
    """At start in the background (the page is not held up); on reload before the new model is swapped in."""
    new = host.reload({"engine": "openvino", "precision": "bf16"}, {})
    assert new.model.engine == "openvino" and new.model.compiled_parts == set(ONNX_PARTS)
    started = ModelHost(host.config)
    try:
        deadline = time.monotonic() + 120
        while started.service.model.compiled_parts != set(ONNX_PARTS) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.service.model.compiled_parts == set(ONNX_PARTS)
    finally:
        started.close()
