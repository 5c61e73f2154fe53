"""Inference engines: a TDN run by ONNX Runtime, OpenVINO or TensorRT from its exact ONNX export.

:class:`EngineModel` has the inference interface of a prepared :class:`~tdn.model.TDN`
(``model(window)``, ``forward_segments[_with_response]``, ``forward_temporal``, ``cfg``, ``meta``,
``precision``, ``device``, ``engine``), so :func:`tdn.load_model`'s callers (the streaming
engine, ``tdn predict``, ``tdn eval``, the app) run any engine unchanged. Each graph of
:data:`tdn.export.ONNX_PARTS` is exported (float32, in memory) and compiled the first time it is
called (OpenVINO: the first time for each input shape, up to a bound): ``tdn predict`` compiles only
the whole model, the streaming engine only its two halves.

The engines differ only in the object that runs a graph (:data:`RUNNERS`): ONNX Runtime on the
CPU, OpenVINO on the CPU (fp32 or bf16), TensorRT on CUDA through ONNX Runtime's TensorRT
execution provider (fp16 or fp32; needs ``onnxruntime-gpu`` and TensorRT's libraries).

``engine="auto"`` (:func:`choose_engine`) takes the fastest engine measured for the machine's
device kind and the precision from ``tdn/engine_choice.yaml``, a table recorded by
``tdn bench model --engines ... --record-choice`` (see BENCHMARKS.md), when it beat torch by at least
:data:`MIN_GAIN`; otherwise, and for a device kind with no measurement, torch.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from torch import nn

from tdn.export import CLIP_PARTS, LIVE_PARTS, ONNX_META_KEY, ONNX_PARTS, example_input, onnx_bytes
from tdn.model import TDN
from tdn.registry import ENGINE_PACKAGES, ENGINES

log = logging.getLogger(__name__)

CHOICE_TABLE = Path(__file__).resolve().parent / "engine_choice.yaml"

# engine -> device type -> precisions it runs, preferred first (the first is taken for precision "auto")
SUPPORTED: dict[str, dict[str, tuple[str, ...]]] = {
    "torch": {"cpu": ("bf16", "fp32"), "cuda": ("fp16", "bf16", "fp32")},
    "onnxruntime": {"cpu": ("fp32",), "cuda": ("fp32",)},
    "openvino": {"cpu": ("bf16", "fp32")},
    "tensorrt": {"cuda": ("fp16", "fp32")},
}

# an engine is chosen over torch only if measured at least this much faster: less is within the noise of
# medians on a shared machine, and not worth an export and a compilation at every load
MIN_GAIN = 0.10

# input shapes an OpenVINO graph is compiled for, each (~2 s and the weights again for TDN-R50), before
# further shapes share one graph for any batch size (see _OpenVinoRunner)
OPENVINO_STATIC_SHAPES = 4
# Windows' worth of input per TensorRT call: its engines are built for 1 to this many (one optimisation
# profile, tensorrt_profile) and larger calls are split (the live path sends at most pipeline.max_batch,
# 8 by default).
TENSORRT_MAX_WINDOWS = 8

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]  # named inputs -> outputs in the graph's order


def engine_installed(engine: str) -> bool:
    """Whether the Python package ``engine`` needs is importable (torch always is)."""
    package = ENGINE_PACKAGES.get(engine)
    return package is None or importlib.util.find_spec(package) is not None


def check_engine(engine: str, device: torch.device, precision: str) -> None:
    """A ValueError saying what is wrong if ``engine`` cannot run ``precision`` on ``device`` here."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)} or auto, got {engine!r}")
    if not engine_installed(engine):
        raise ValueError(f"engine {engine!r} needs the Python package {ENGINE_PACKAGES[engine]!r}, which is not "
                         f"installed (pip install 'tdn-live[{engine}]')")
    precisions = SUPPORTED[engine].get(device.type)
    if precisions is None:
        raise ValueError(f"engine {engine!r} does not run on {device.type}; it runs on {', '.join(SUPPORTED[engine])}")
    if precision not in precisions:
        raise ValueError(f"engine {engine!r} on {device.type} runs {', '.join(precisions)}, not {precision}")
    if engine == "tensorrt":
        import onnxruntime

        if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError("engine 'tensorrt' needs onnxruntime-gpu with TensorRT's libraries "
                             f"(available ONNX Runtime providers: {', '.join(onnxruntime.get_available_providers())})")


def device_kind(device: torch.device) -> str:
    """The row of the choice table a device belongs to: ``cuda``, or the CPU's best bf16 instructions
    (``cpu-amx``, ``cpu-avx512_bf16``, ``cpu``)."""
    if device.type == "cuda":
        return "cuda"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "amx_bf16" in flags:
        return "cpu-amx"
    return "cpu-avx512_bf16" if "avx512_bf16" in flags else "cpu"


@lru_cache(maxsize=1)
def _choice_table() -> dict:
    return yaml.safe_load(CHOICE_TABLE.read_text()) or {}


def choose_engine(device: torch.device, precision: str) -> tuple[str, str]:
    """``(engine, why)``: the fastest installed engine measured for this device kind and precision, if it
    beat torch by at least :data:`MIN_GAIN` (else torch, which needs no export and no compilation)."""
    kind = device_kind(device)
    row = _choice_table().get(kind, {}).get(precision)
    if row is None:
        return "torch", f"auto: no measurement for {kind} {precision} in {CHOICE_TABLE.name}; torch"
    ranked = sorted(row["ms"], key=row["ms"].get)  # fastest first, whatever the file's order
    timings = ", ".join(f"{e} {row['ms'][e]:g} ms" for e in ranked)
    runnable = [e for e in ranked if engine_installed(e) and precision in SUPPORTED[e].get(device.type, ())]
    if not runnable:
        return "torch", f"auto: no measured engine installed for {kind} {precision}; torch"
    fastest, torch_ms = runnable[0], row["ms"].get("torch")
    if fastest != "torch" and torch_ms is not None and row["ms"][fastest] > (1 - MIN_GAIN) * torch_ms:
        return "torch", (f"auto: measured for {kind} {precision} ({timings}; {row['source']}): "
                         f"{fastest} less than {MIN_GAIN:.0%} faster than torch; torch")
    return fastest, f"auto: fastest measured for {kind} {precision} ({timings}; {row['source']})"


# -- the runners: one compiled graph each -------------------------------------------------------
def _onnxruntime_runner(onnx: bytes, device: torch.device, precision: str, providers: list | None = None) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    if providers is None:
        providers = ["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(onnx, options, providers=providers)
    return lambda inputs: session.run(None, inputs)


def tensorrt_profile(onnx: bytes, max_windows: int = TENSORRT_MAX_WINDOWS) -> tuple[dict[str, str], int]:
    """ONNX Runtime's TensorRT options for one optimisation profile of the graph ``onnx`` (an export of
    :func:`tdn.export.onnx_bytes`): its input from 1 row (optimised for) to ``max_windows`` windows'
    worth, other dimensions as exported; and that largest row count. Without an explicit profile the
    provider builds an engine for the first batch size and builds it again (on the live path) each time
    a larger one comes."""
    import onnx as onnx_format

    proto = onnx_format.load_model_from_string(onnx)
    meta = json.loads({prop.key: prop.value for prop in proto.metadata_props}[ONNX_META_KEY])
    max_rows = max_windows * (meta["num_segments"] if meta["part"] == "segments" else 1)  # segments: T per window

    def shapes(rows: int) -> str:  # "name:rowsxd1xd2..." per input, comma-separated
        dims = {t.name: [d.dim_value for d in t.type.tensor_type.shape.dim[1:]] for t in proto.graph.input}
        return ",".join(f"{name}:" + "x".join(map(str, [rows, *rest])) for name, rest in dims.items())

    return {"trt_profile_min_shapes": shapes(1), "trt_profile_opt_shapes": shapes(1),
            "trt_profile_max_shapes": shapes(max_rows)}, max_rows


def _in_chunks(run: Runner, max_rows: int) -> Runner:
    """``run`` on at most ``max_rows`` rows (first dimension) of its inputs at a time, outputs concatenated."""
    def chunked(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(inputs.values())))
        if rows <= max_rows:
            return run(inputs)
        chunks = [run({name: array[start:start + max_rows] for name, array in inputs.items()})
                  for start in range(0, rows, max_rows)]
        return [np.concatenate(outputs) for outputs in zip(*chunks)]

    return chunked


def _tensorrt_runner(onnx: bytes, device: torch.device, precision: str) -> Runner:
    profile, max_rows = tensorrt_profile(onnx)
    trt = ("TensorrtExecutionProvider", {"device_id": device.index or 0, "trt_fp16_enable": precision == "fp16",
                                         **profile})
    return _in_chunks(_onnxruntime_runner(onnx, device, precision, providers=[trt, "CUDAExecutionProvider"]), max_rows)


class _SignalStack(ctypes.Structure):  # the stack_t of sigaltstack(2)
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@lru_cache(maxsize=1)
def _sigaltstack():
    """libc's sigaltstack (looked up once: it is called around every OpenVINO inference), or None off POSIX."""
    return getattr(ctypes.CDLL(None), "sigaltstack", None)


@contextlib.contextmanager
def _keeping_signal_stack():
    """Run native code that may replace this thread's alternate signal stack, and put the old one back.

    OpenVINO's CPU plugin (2026.4) installs a signal stack of its own on a thread that compiles or
    runs a model and frees it with the model. Where the model is freed on another thread, the
    first thread's signal stack is left pointing at freed memory: the next signal handled on that
    thread (Python's handlers all run on the signal stack: Ctrl-C, torch's DataLoader SIGCHLD)
    kills the process with SIGSEGV, or writes its frame over whatever now lives there (the CI
    crashes of 2026-12-02, docs/limits.md). No handler of OpenVINO's needs that stack."""
    sigaltstack = _sigaltstack()
    if sigaltstack is None:
        yield
        return
    saved, now = _SignalStack(), _SignalStack()
    sigaltstack(None, ctypes.byref(saved))
    try:
        yield
    finally:
        sigaltstack(None, ctypes.byref(now))
        if (now.ss_sp, now.ss_size, now.ss_flags) != (saved.ss_sp, saved.ss_size, saved.ss_flags):
            sigaltstack(ctypes.byref(saved), None)


class _OpenVinoRunner:
    """A graph compiled by OpenVINO for the CPU, once per input shape: the CPU plugin (2026.4) fuses
    chains of element-wise operations into JIT kernels only where shapes are static, 11-14 % of
    TDN-R50's window (BENCHMARKS.md). At most :data:`OPENVINO_STATIC_SHAPES` shapes get a graph of
    their own; the rest share one compiled for any batch size, so a workload of changing batch sizes
    compiles a bounded number of graphs and never evicts one.

    A new shape's graph is compiled by the call that brings it, unless the any-batch graph exists
    (:meth:`compile_any_batch`): then that graph serves the shape at once and the shape waits in
    :attr:`wanted` until :meth:`compile_wanted` (a service's compile thread,
    ``RecognitionService.compile_ahead``) compiles it, so a live service never stalls on a compilation.
    Calls are serialised (one infer request per graph); every call into OpenVINO, freeing included (on
    whichever thread drops the runner), keeps the calling thread's signal stack (:func:`_keeping_signal_stack`)."""

    def __init__(self, onnx: bytes, device: torch.device, precision: str):
        self._onnx = onnx
        self._config = {"INFERENCE_PRECISION_HINT": {"bf16": "bf16", "fp32": "f32"}[precision],
                        "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"}
        self._graphs: dict[tuple | None, tuple] = {}  # input shapes (None: any batch) -> (compiled, request, outputs)
        self._wanted: list[tuple] = []  # shapes served by the any-batch graph until compile_wanted
        self._lock = threading.Lock()

    @property
    def compiled_shapes(self) -> list[tuple | None]:
        """The input shapes compiled for, in order (``None``: the graph for any batch size); a shape whose
        own graph failed to compile is served by the any-batch graph and is not listed."""
        with self._lock:
            any_batch = self._graphs.get(None)
            return [shapes for shapes, graph in self._graphs.items() if shapes is None or graph is not any_batch]

    @property
    def wanted(self) -> list[tuple]:
        """Shapes waiting for a graph of their own (served by the any-batch graph meanwhile)."""
        with self._lock:
            return list(self._wanted)

    def _compile(self, shapes: tuple | None) -> tuple:
        """(compiled, request, outputs) for ``shapes`` (None: any batch size); touches no state."""
        import openvino

        with _keeping_signal_stack():
            core = openvino.Core()
            model = core.read_model(self._onnx)
            if shapes is not None:
                model.reshape({name: list(shape) for name, shape in shapes})
            compiled = core.compile_model(model, "CPU", self._config)
            graph = (compiled, compiled.create_infer_request(), list(compiled.outputs))
        log.info("compiled an OpenVINO graph for %s", "any batch size" if shapes is None
                 else "inputs " + ", ".join(f"{name} {shape}" for name, shape in shapes))
        return graph

    def _slots_left(self) -> int:
        return OPENVINO_STATIC_SHAPES - (len(self._graphs) - (None in self._graphs)) - len(self._wanted)

    def _graph(self, shapes: tuple) -> tuple:
        if shapes in self._graphs:
            return self._graphs[shapes]
        if None in self._graphs:  # serve it now; with a slot left, compile_wanted gives it its own graph
            if shapes not in self._wanted and self._slots_left() > 0:
                self._wanted.append(shapes)
            return self._graphs[None]
        key = shapes if self._slots_left() > 0 else None
        self._graphs[key] = self._compile(key)
        return self._graphs[key]

    def compile_any_batch(self) -> None:
        """Compile the graph for any batch size now, so that new shapes are served without waiting."""
        with self._lock:
            if None not in self._graphs:
                self._graphs[None] = self._compile(None)

    def compile_wanted(self) -> int:
        """Compile a graph of its own for each shape in :attr:`wanted` (calls go on meanwhile, on the
        any-batch graph); returns how many were compiled. A shape that fails to compile is not retried:
        the any-batch graph goes on serving it (it keeps its slot; it is not in :attr:`compiled_shapes`)."""
        with self._lock:
            wanted = list(self._wanted)
        compiled = 0
        for shapes in wanted:
            try:
                graph = self._compile(shapes)
                compiled += 1
            except Exception:
                log.exception("compiling an OpenVINO graph for %s failed; the graph for any batch size serves it",
                              shapes)
                graph = None
            with self._lock:
                self._graphs[shapes] = graph if graph is not None else self._graphs[None]
                self._wanted = [w for w in self._wanted if w != shapes]
        return compiled

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        shapes = tuple(sorted((name, tuple(array.shape)) for name, array in inputs.items()))
        with self._lock:
            _, request, outputs = self._graph(shapes)
            with _keeping_signal_stack():
                results = request.infer(inputs)
                return [np.array(results[output]) for output in outputs]  # copies: the request reuses its buffers

    def __del__(self):
        with _keeping_signal_stack():
            self.__dict__.clear()  # OpenVINO frees the models, and its signal stack, here


RUNNERS: dict[str, Callable[[bytes, torch.device, str], Runner]] = {
    "onnxruntime": _onnxruntime_runner,
    "openvino": _OpenVinoRunner,
    "tensorrt": _tensorrt_runner,
}


class EngineModel(nn.Module):
    """A float32 eval-mode TDN (BatchNorm folded) run by ``engine`` in ``precision``; see the module
    docstring. Input float32 ``(N, T, L, 3, S, S)`` at the model's T and S, output float32 logits."""

    def __init__(self, model: TDN, engine: str, *, device: torch.device, precision: str):
        super().__init__()
        check_engine(engine, device, precision)
        if engine == "torch":
            raise ValueError("EngineModel runs an ONNX engine; use the TDN itself for torch")
        self.cfg, self.meta, self.engine, self.precision, self.device = model.cfg, model.meta, engine, precision, device
        self.choice = engine  # why this engine; load_model sets it for "auto"
        self._graphs: dict[str, bytes] = {}
        self._model = [model]  # a list keeps it out of this module's children (it is not run here)
        self._runners: dict[str, Runner] = {}
        self._ran: set[str] = set()  # parts run at least once: compiled (for one input shape at least)
        self._lock = threading.Lock()
        self.eval()

    def onnx(self, part: str) -> bytes:
        """The ONNX graph this engine runs for ``part``."""
        if part not in self._graphs:
            self._graphs[part] = onnx_bytes(self._model[0], part)
        return self._graphs[part]

    def _runner(self, part: str) -> Runner:
        with self._lock:
            if part not in self._runners:
                self._runners[part] = RUNNERS[self.engine](self.onnx(part), self.device, self.precision)
            return self._runners[part]

    @property
    def compiled_parts(self) -> set[str]:
        """The graphs compiled and run so far (:data:`tdn.export.ONNX_PARTS` names)."""
        with self._lock:
            return set(self._ran)

    def compile_graphs(self, parts: tuple[str, ...] = LIVE_PARTS + CLIP_PARTS) -> None:
        """Export and compile ``parts`` now rather than on their first use (a few seconds each): each is
        run on one window's worth of input, and where the runner compiles per input shape (OpenVINO)
        its graph for any batch size is compiled too, so that no later batch size waits for a
        compilation (:meth:`compile_wanted` gives them graphs of their own); by default the live
        path's two halves first, then the whole model that clip views run."""
        window = example_input(self._model[0])  # (1, T, L, 3, S, S)
        segments = window.flatten(0, 1)  # -> (T, L, 3, S, S)
        for part in parts:
            if part == "temporal":  # the features of this engine's own segments graph, (1, T, C, h, w)
                self._run(part, self.forward_segments(segments).unflatten(0, window.shape[:2]))
            else:
                self._run(part, window if part == "model" else segments)
            compile_any_batch = getattr(self._runner(part), "compile_any_batch", None)
            if compile_any_batch is not None:
                compile_any_batch()

    def compile_wanted(self) -> int:
        """Compile graphs of their own for the batch sizes that came since :meth:`compile_graphs` (served
        meanwhile by the any-batch graph); returns how many (0 for runners that do not compile per shape)."""
        with self._lock:
            runners = list(self._runners.values())
        return sum(getattr(runner, "compile_wanted", lambda: 0)() for runner in runners)

    def _run(self, part: str, x: torch.Tensor) -> list[torch.Tensor]:
        runner = self._runner(part)
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outputs = runner({ONNX_PARTS[part][0][0]: array})
        with self._lock:
            if part not in self._ran:
                self._ran.add(part)
                log.info("compiled the %s graph with %s (%s)", part, self.engine, self.precision)
        return [torch.from_numpy(np.ascontiguousarray(o)) for o in outputs]

    def _check(self, shape: tuple[int, ...], expected: tuple[int, ...], what: str) -> None:
        if tuple(shape[1:]) != expected:
            raise ValueError(f"expected {what} (N, {', '.join(map(str, expected))}) for this {self.engine} model, "
                             f"got shape {tuple(shape)}")

    @property
    def _size(self) -> int:
        return self.meta.input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, s = self.cfg, self._size
        self._check(x.shape, (c.num_segments, c.segment_length, 3, s, s), "input")
        return self._run("model", x)[0]

    def forward_segments_with_response(self, segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As :meth:`TDN.forward_segments_with_response`: features and the S-TDM response (None without S-TDM)."""
        s = self._size
        self._check(segments.shape, (self.cfg.segment_length, 3, s, s), "segments")
        outputs = self._run("segments", segments)
        return outputs[0], outputs[1] if len(outputs) > 1 else None

    def forward_segments(self, segments: torch.Tensor) -> torch.Tensor:
        return self.forward_segments_with_response(segments)[0]

    def forward_temporal(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[1] != self.cfg.num_segments:
            raise ValueError(f"this model was built for T={self.cfg.num_segments} segments, got {features.shape[1]}")
        return self._run("temporal", features)[0]
