"""RecognitionService.compile_ahead with OpenVINO (a tiny TDN): graphs compiled before the first
window, a new batch size served at once and given a graph of its own in the background, and a graph
the engine cannot compile named as such (raised when waited for, logged when not)."""
from __future__ import annotations

import logging
import time

import pytest
import torch

from pipelines.service import RecognitionService
from tdn.api import load_model
from tdn.checkpoint import save_model
from tdn.config import load_config
from tdn.engines import engine_installed
from tdn.export import ONNX_PARTS
from tdn.meta import ModelMeta
from tdn.model import TDN, TDNConfig

pytestmark = pytest.mark.skipif(not engine_installed("openvino"), reason="needs the openvino extra")
T = 4


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    torch.manual_seed(0)
    model = TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=T, num_classes=3))
    weights = save_model(tmp_path_factory.mktemp("compile") / "tiny.pt", model,
                         ModelMeta(labels=["a", "b", "c"], input_size=64, resize_short=72))
    return load_config(overrides={"model.weights": str(weights), "model.device": "cpu", "model.precision": "fp32",
                                  "model.engine": "openvino", "pipeline.backend": "cpu"})


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.2)  # polling interval; the outcome does not depend on it


def test_a_new_batch_size_is_served_at_once_and_compiled_in_the_background(config):
    """Two streams' windows in one batch: no wait for a compilation on the live path; the service's
    compile thread then gives that batch size a graph of its own."""
    with RecognitionService(config) as service:
        service.compile_ahead(wait=True)
        model = service.model
        assert model.compiled_parts == set(ONNX_PARTS)
        temporal = model._runner("temporal")
        assert None in temporal.compiled_shapes  # the any-batch graph, compiled with the others
        segments = torch.randn(2 * T, 5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        features = model.forward_segments(segments).unflatten(0, (2, T))  # (2*T, C, h, w) -> (2, T, C, h, w)
        with torch.no_grad():
            reference = load_model(config.model.weights, precision="fp32").forward_temporal(features)
        batch_of_two = (("features", tuple(features.shape)),)
        assert torch.allclose(model.forward_temporal(features), reference, atol=1e-4)
        assert batch_of_two not in temporal.compiled_shapes  # served by the any-batch graph, not compiled for
        wait_until(lambda: batch_of_two in temporal.compiled_shapes, 60, "the batch of two's own graph")
        assert temporal.wanted == []
        assert torch.allclose(model.forward_temporal(features), reference, atol=1e-4)


def test_closing_at_once_waits_for_the_background_compile(config):
    """OpenVINO aborts the process if it exits while a graph compiles."""
    service = RecognitionService(config)
    service.compile_ahead()
    service.close()
    assert service.model.compiled_parts == set(ONNX_PARTS)


def test_a_graph_that_cannot_compile_is_named_when_waited_for_and_logged_in_the_background(config, monkeypatch,
                                                                                          caplog):
    def fails(parts):
        raise RuntimeError("no kernel for this node")

    with RecognitionService(config) as service:
        monkeypatch.setattr(service.model, "compile_graphs", fails)
        with pytest.raises(ValueError, match="the openvino engine could not compile this model: no kernel"):
            service.compile_ahead(wait=True)
    with RecognitionService(config) as service, caplog.at_level(logging.ERROR, logger="pipelines.service"):
        monkeypatch.setattr(service.model, "compile_graphs", fails)
        service.compile_ahead()
        wait_until(lambda: "compiling the openvino graphs failed" in caplog.text, 30, "the failure in the log")
