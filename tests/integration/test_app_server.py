"""The served app is safe to expose: login required when auth is set, uploads capped, no
arbitrary server files readable, 127.0.0.1 by default; ``tdn app`` refuses malformed auth."""
from __future__ import annotations

import argparse
import contextlib

import httpx
import pytest
import torch

from cli import app as app_command
from loopback import free_port
from tdn.checkpoint import save_model
from tdn.meta import ModelMeta
from tdn.config import load_config
from tdn.model import TDN, TDNConfig


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from app.ui import launch

    tmp = tmp_path_factory.mktemp("app_server")
    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=4, num_classes=3))
    weights = save_model(tmp / "tiny.pt", model, ModelMeta(labels=["a", "b", "c"], input_size=64, resize_short=72))
    cfg = load_config(overrides={"model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32",
                                 "pipeline.backend": "cpu", "app.port": free_port(), "app.max_upload_mb": 1})
    assert cfg.app.host == "127.0.0.1"  # the default bind address
    demo, host = launch(cfg, auth=("viewer", "pw-123"), prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{cfg.app.port}", demo
    finally:
        demo.close()
        host.close()


@contextlib.contextmanager
def logged_in(base: str):
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.post("/login", data={"username": "viewer", "password": "pw-123"})
        assert response.status_code == 200, response.text
        yield client


def test_binds_loopback_and_requires_login(served):
    base, demo = served
    assert demo.server_name == "127.0.0.1"
    assert httpx.get(f"{base}/config", timeout=30).status_code == 401
    assert httpx.post(f"{base}/login", data={"username": "viewer", "password": "wrong"}, timeout=30).status_code == 400
    with logged_in(base) as client:
        assert client.get("/config").status_code == 200


def test_uploads_over_the_limit_are_refused(served):
    base, _ = served
    with logged_in(base) as client:
        small = client.post("/gradio_api/upload", files={"files": ("a.mp4", b"\0" * 1000, "video/mp4")})
        assert small.status_code == 200
        big = client.post("/gradio_api/upload", files={"files": ("b.mp4", b"\0" * (2 * 2**20), "video/mp4")})
        assert big.status_code == 413


def test_server_files_cannot_be_fetched(served):
    base, _ = served
    with logged_in(base) as client:
        for path in ["/etc/passwd", "config.yaml"]:
            assert client.get(f"/gradio_api/file={path}").status_code in (403, 404)


def test_cli_refuses_malformed_auth_before_loading_anything(monkeypatch):
    parser = argparse.ArgumentParser()
    from cli.options import add_config_arguments

    add_config_arguments(parser)
    app_command.add_arguments(parser)
    monkeypatch.setenv("TDN_APP_AUTH", "no-colon")
    with pytest.raises(ValueError, match="TDN_APP_AUTH must be 'user:password'"):
        app_command.main(parser.parse_args([]))
