"""Inference engines through load_model: the same outputs as torch (fp32 exact to 1e-4 of the logit
range, bf16 top-1 agreement >= 99%), the choice of engine "auto" from the measured table, and clear
errors for engines that cannot run. TensorRT (CUDA) under the gpu marker."""
from __future__ import annotations

import importlib.util

import pytest
import torch
import yaml

from official_fixture import official_fixture  # noqa: F401 (pytest fixture)
from random_weights import random_weights, relative_error
from tdn import engines
from tdn.api import load_model
from tdn.config import ConfigError, load_config
from tdn.engines import EngineModel, choose_engine, device_kind

TOLERANCE = 1e-4
CPU_ENGINES = [e for e in ("onnxruntime", "openvino") if importlib.util.find_spec(e) is not None]


def _windows(n: int, t: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, t, 5, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return random_weights(tmp_path_factory.mktemp("w") / "tdn_r18.pt", arch="resnet18", variant="tdn")


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_fp32_engine_equals_torch(engine, weights):
    reference = load_model(weights, precision="fp32")
    model = load_model(weights, precision="fp32", engine=engine)
    assert isinstance(model, EngineModel) and (model.engine, model.precision) == (engine, "fp32")
    assert model.meta.labels == reference.meta.labels and model.cfg == reference.cfg
    x = _windows(3)
    with torch.no_grad():
        expected = reference(x)
        got = model(x)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        assert relative_error(got, expected) <= TOLERANCE
        # the two halves the streaming engine runs
        features, response = model.forward_segments_with_response(x.flatten(0, 1))
        ref_features, ref_response = reference.forward_segments_with_response(x.flatten(0, 1))
        assert relative_error(features, ref_features) <= TOLERANCE
        assert relative_error(response, ref_response) <= TOLERANCE
        assert relative_error(model.forward_temporal(features.unflatten(0, (3, 8))), expected) <= TOLERANCE


@pytest.mark.skipif("openvino" not in CPU_ENGINES, reason="openvino not installed")
def test_openvino_compiles_a_graph_per_input_shape_up_to_a_bound(weights):
    """Static shapes are what OpenVINO fuses best; past the bound one graph for any batch size serves the
    other shapes, and a shape seen before is never compiled again."""
    reference = load_model(weights, precision="fp32")
    runner = engines.RUNNERS["openvino"](load_model(weights, precision="fp32", engine="openvino").onnx("model"),
                                         torch.device("cpu"), "fp32")
    bound = engines.OPENVINO_STATIC_SHAPES
    for n in [*range(1, bound + 3), 1, bound + 1, bound]:
        x = _windows(n, seed=n)
        [got] = runner({"window": x.numpy()})
        with torch.no_grad():
            assert relative_error(torch.from_numpy(got), reference(x)) <= TOLERANCE, f"batch {n}"
    static = [(("window", (n, 8, 5, 3, 64, 64)),) for n in range(1, bound + 1)]
    assert runner.compiled_shapes == [*static, None]


@pytest.mark.skipif("openvino" not in CPU_ENGINES, reason="openvino not installed")
def test_openvino_serves_a_new_shape_from_the_any_batch_graph_until_its_own_is_compiled(weights):
    """How a live service avoids stalls: once the any-batch graph exists, a new batch size runs on it at
    once, and gets a graph of its own only when compile_wanted runs (the service's compile thread)."""
    reference = load_model(weights, precision="fp32")
    runner = engines.RUNNERS["openvino"](load_model(weights, precision="fp32", engine="openvino").onnx("model"),
                                         torch.device("cpu"), "fp32")
    shape = lambda n: (("window", (n, 8, 5, 3, 64, 64)),)  # noqa: E731
    one, two = _windows(1, seed=1), _windows(2, seed=2)
    runner({"window": one.numpy()})
    runner.compile_any_batch()
    assert runner.compiled_shapes == [shape(1), None]
    with torch.no_grad():
        for _ in range(2):  # served by the any-batch graph, asked for once
            [got] = runner({"window": two.numpy()})
            assert relative_error(torch.from_numpy(got), reference(two)) <= TOLERANCE
        assert runner.compiled_shapes == [shape(1), None] and runner.wanted == [shape(2)]
        assert runner.compile_wanted() == 1 and runner.compile_wanted() == 0
        assert runner.compiled_shapes == [shape(1), None, shape(2)] and runner.wanted == []
        [got] = runner({"window": two.numpy()})
        assert relative_error(torch.from_numpy(got), reference(two)) <= TOLERANCE


@pytest.mark.skipif("openvino" not in CPU_ENGINES, reason="openvino not installed")
def test_openvino_keeps_serving_a_shape_whose_own_graph_fails_to_compile(weights, monkeypatch, caplog):
    """The failure is logged, the shape is not retried or listed as compiled, and its calls go on."""
    reference = load_model(weights, precision="fp32")
    runner = engines.RUNNERS["openvino"](load_model(weights, precision="fp32", engine="openvino").onnx("model"),
                                         torch.device("cpu"), "fp32")
    shape = lambda n: (("window", (n, 8, 5, 3, 64, 64)),)  # noqa: E731
    runner({"window": _windows(1, seed=1).numpy()})
    runner.compile_any_batch()
    three = _windows(3, seed=3)
    runner({"window": three.numpy()})
    assert runner.wanted == [shape(3)]

    def no_graph(shapes):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "_compile", no_graph)
    assert runner.compile_wanted() == 0 and "out of memory" in caplog.text
    assert runner.compiled_shapes == [shape(1), None] and runner.wanted == []
    for _ in range(2):  # served by the any-batch graph, not asked for again
        [got] = runner({"window": three.numpy()})
        with torch.no_grad():
            assert relative_error(torch.from_numpy(got), reference(three)) <= TOLERANCE
    assert runner.wanted == []


@pytest.mark.skipif("onnxruntime" not in CPU_ENGINES, reason="onnxruntime not installed")
def test_tensorrt_gets_one_profile_for_every_batch_and_larger_calls_are_split(weights):
    """What the TensorRT runner adds to ONNX Runtime's, checked without a GPU: one optimisation profile
    per graph, 1 row to TENSORRT_MAX_WINDOWS windows' worth (segments: T per window), and calls beyond it
    run in pieces with the same outputs as whole (here through ONNX Runtime on the CPU)."""
    model = load_model(weights, precision="fp32", engine="onnxruntime")
    m = engines.TENSORRT_MAX_WINDOWS
    features = tuple(model.forward_segments(_windows(1).flatten(0, 1)).shape[1:])  # (C, h, w) per segment
    expected = {"model": ("window", (8, 5, 3, 64, 64), m), "segments": ("segments", (5, 3, 64, 64), m * 8),
                "temporal": ("features", (8, *features), m)}
    for part, (name, rest, max_rows) in expected.items():
        profile, rows = engines.tensorrt_profile(model.onnx(part))
        shape = lambda n: f"{name}:" + "x".join(map(str, (n, *rest)))  # noqa: E731
        assert profile == {"trt_profile_min_shapes": shape(1), "trt_profile_opt_shapes": shape(1),
                           "trt_profile_max_shapes": shape(max_rows)} and rows == max_rows, part
    whole = engines.RUNNERS["onnxruntime"](model.onnx("model"), torch.device("cpu"), "fp32")
    pieces = []
    in_pieces = engines._in_chunks(lambda inputs: pieces.append(len(inputs["window"])) or whole(inputs), 2)
    x = _windows(5, seed=5).numpy()
    [got], [expected_logits] = in_pieces({"window": x}), whole({"window": x})
    assert pieces == [2, 2, 1] and got.shape == expected_logits.shape
    assert relative_error(torch.from_numpy(got), torch.from_numpy(expected_logits)) <= TOLERANCE


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_openvino_bf16_agrees_with_fp32_on_top1(official_fixture):  # noqa: F811
    """As the torch bf16 path does (tests/unit/test_model.py): >= 99% top-1 agreement with torch fp32."""
    fp32 = load_model(official_fixture["checkpoint"], num_segments=8, precision="fp32")
    bf16 = load_model(official_fixture["checkpoint"], num_segments=8, precision="bf16", engine="openvino")
    assert bf16.precision == "bf16"
    bf16.meta.input_size = 64  # an official file does not declare its size; the graph is traced at the meta's
    agree = total = 0
    with torch.no_grad():
        for seed in range(4):
            x = _windows(32, size=64, seed=100 + seed)
            a, b = fp32(x), bf16(x)
            assert b.dtype == torch.float32
            agree += (a.argmax(1) == b.argmax(1)).sum().item()
            total += len(x)
    assert agree / total >= 0.99, f"openvino bf16 top-1 agreed on {agree}/{total}"


def test_engine_model_checks_its_input_shape(weights):
    model = load_model(weights, precision="fp32", engine=CPU_ENGINES[0]) if CPU_ENGINES else pytest.skip("no engine")
    with pytest.raises(ValueError, match=r"expected input \(N, 8, 5, 3, 64, 64\).*got shape \(1, 8, 5, 3, 32, 32\)"):
        model(_windows(1, size=32))
    with pytest.raises(ValueError, match="T=8 segments, got 4"):
        model.forward_temporal(torch.zeros(1, 4, 64, 16, 16))


def test_auto_takes_the_fastest_installed_engine_of_the_table(monkeypatch):
    cpu = torch.device("cpu")
    kind = device_kind(cpu)
    table = {kind: {"bf16": {"ms": {"tensorrt": 10.0, "openvino": 20.0, "torch": 30.0}, "source": "test"}}}
    monkeypatch.setattr(engines, "_choice_table", lambda: table)
    engine, why = choose_engine(cpu, "bf16")
    # tensorrt does not run on a CPU; openvino does if installed
    assert engine == ("openvino" if "openvino" in CPU_ENGINES else "torch")
    assert kind in why and "openvino 20 ms" in why
    engine, why = choose_engine(cpu, "fp32")  # not measured: torch, and it says so
    assert engine == "torch" and "no measurement" in why


@pytest.mark.skipif("openvino" not in CPU_ENGINES, reason="openvino not installed")
def test_auto_keeps_torch_unless_an_engine_is_clearly_faster(monkeypatch):
    cpu = torch.device("cpu")
    row = lambda ms: {device_kind(cpu): {"fp32": {"ms": ms, "source": "test"}}}  # noqa: E731
    monkeypatch.setattr(engines, "_choice_table", lambda: row({"openvino": 95.0, "torch": 100.0}))
    engine, why = choose_engine(cpu, "fp32")
    assert engine == "torch" and "openvino less than 10% faster than torch" in why
    monkeypatch.setattr(engines, "_choice_table", lambda: row({"openvino": 85.0, "torch": 100.0}))
    assert choose_engine(cpu, "fp32")[0] == "openvino"


def test_recorded_rows_are_fastest_first_and_auto_ranks_by_time_anyway(monkeypatch, tmp_path):
    from tdn.bench import record_choice

    table = tmp_path / "engine_choice.yaml"
    table.write_text("# header\n{}\n")
    result = lambda ms: {"engines": {e: {"tdn_ms": t} for e, t in ms.items()}}  # noqa: E731
    report = {"device_kind": "cpu-amx", "arch": "resnet50", "num_segments": 8, "size": 224, "threads": 2,
              "date": "2026-12-02 05:34 UTC",
              "results": {"bf16": result({"torch": 532.0, "openvino": 1053.4}),
                          "fp32": result({"torch": 848.3, "openvino": 1250.1, "onnxruntime": 1069.1})}}
    record_choice(report, table)
    written = yaml.safe_load(table.read_text())["cpu-amx"]
    assert list(written["fp32"]["ms"]) == ["torch", "onnxruntime", "openvino"]  # not alphabetical
    assert list(written["bf16"]["ms"]) == ["torch", "openvino"] and table.read_text().startswith("# header")
    cpu = torch.device("cpu")
    unordered = {device_kind(cpu): {"fp32": {"ms": {"torch": 100.0, "openvino": 50.0}, "source": "test"}}}
    monkeypatch.setattr(engines, "_choice_table", lambda: unordered)
    assert choose_engine(cpu, "fp32")[0] == ("openvino" if "openvino" in CPU_ENGINES else "torch")


def test_auto_is_visible_on_the_model(weights, monkeypatch):
    monkeypatch.setattr(engines, "_choice_table", lambda: {})
    model = load_model(weights, precision="fp32", engine="auto")
    assert model.engine == "torch" and "no measurement" in model.engine_choice


def test_the_recorded_table_is_well_formed():
    table = yaml.safe_load(engines.CHOICE_TABLE.read_text()) or {}
    for kind, rows in table.items():
        assert kind in ("cuda", "cpu", "cpu-amx", "cpu-avx512_bf16"), kind
        for precision, row in rows.items():
            assert precision in ("fp32", "bf16", "fp16") and row["source"]
            times = list(row["ms"].values())
            assert times == sorted(times) and set(row["ms"]) <= set(engines.SUPPORTED)


@pytest.mark.parametrize("engine, device, precision, message", [
    ("openvino", "cpu", "fp16", "needs a CUDA device"),
    ("onnxruntime", "cpu", "bf16", "engine 'onnxruntime' on cpu runs fp32, not bf16"),
    ("vulkan", "cpu", "fp32", "engine must be one of torch, onnxruntime, openvino, tensorrt or auto, got 'vulkan'"),
])
def test_engines_that_cannot_run_are_refused_clearly(weights, engine, device, precision, message):
    with pytest.raises(ValueError, match=message):
        load_model(weights, engine=engine, device=device, precision=precision)


def test_tensorrt_on_a_cpu_is_refused(weights, monkeypatch):
    monkeypatch.setattr(engines, "engine_installed", lambda name: True)
    with pytest.raises(ValueError, match="engine 'tensorrt' does not run on cpu; it runs on cuda"):
        load_model(weights, engine="tensorrt", device="cpu", precision="fp32")


def test_auto_precision_is_the_engines_own(weights):
    if "onnxruntime" not in CPU_ENGINES:
        pytest.skip("onnxruntime not installed")
    assert load_model(weights, engine="onnxruntime", precision="auto").precision == "fp32"


def test_config_names_a_bad_or_missing_engine(monkeypatch):
    with pytest.raises(ConfigError, match="'model.engine' must be one of auto, torch, onnxruntime, openvino, "
                                          "tensorrt; got 'openvin'"):
        load_config(None, {"model.engine": "openvin"})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino"
                        else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"'model.engine' is 'openvino', which needs the Python package "
                                          r"'openvino'; it is not installed \(pip install 'tdn-live\[openvino\]'\)"):
        load_config(None, {"model.engine": "openvino"})
    assert load_config(None, {"model.engine": "torch"}).model.engine == "torch"


def test_a_missing_package_is_named_by_load_model(weights, monkeypatch):
    monkeypatch.setattr(engines, "engine_installed", lambda name: name == "torch")
    with pytest.raises(ValueError, match=r"engine 'openvino' needs the Python package 'openvino'"):
        load_model(weights, engine="openvino", precision="fp32")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_tensorrt_matches_torch_on_cuda(weights, official_fixture, precision):  # noqa: F811
    """TensorRT through the same ONNX export and EngineModel as the CPU engines: fp32 close, fp16 top-1."""
    reference = load_model(official_fixture["checkpoint"], num_segments=8, precision="fp32")
    model = load_model(official_fixture["checkpoint"], num_segments=8, device="cuda", precision=precision,
                       engine="tensorrt")
    model.meta.input_size = 64  # an official file does not declare its size; the graph is traced at the meta's
    agree = total = 0
    with torch.no_grad():
        for seed in range(4):
            x = _windows(32, size=64, seed=100 + seed)
            a, b = reference(x), model(x).cpu()
            if precision == "fp32":
                assert relative_error(b, a) <= 1e-3  # TensorRT may use TF32 for fp32 convolutions
            agree += (a.argmax(1) == b.argmax(1)).sum().item()
            total += len(x)
    assert agree / total >= 0.99, f"tensorrt {precision} top-1 agreed on {agree}/{total}"
