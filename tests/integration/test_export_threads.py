"""ONNX exports from several threads at once (the app compiling a model at start while the model panel
loads another): torch.onnx.export keeps process-wide state, so tdn.export makes them take turns."""
from __future__ import annotations

import threading

import torch

from tdn.export import onnx_bytes
from tdn.model import TDN, TDNConfig


def test_exports_in_parallel_threads_all_succeed():
    torch.manual_seed(0)
    models = [TDN(TDNConfig(arch="resnet18", layers=(1, 1, 1, 1), num_segments=4, num_classes=3)).eval()
              for _ in range(3)]
    start, results, errors = threading.Barrier(len(models)), {}, []

    def export(i):
        start.wait()
        try:
            results[i] = onnx_bytes(models[i], "model")
        except Exception as exc:  # noqa: BLE001 - the test reports whatever an export raised
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(i,)) for i in range(len(models))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == len(models) and all(results.values())
