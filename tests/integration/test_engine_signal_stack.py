"""OpenVINO and the threads' alternate signal stacks: a model compiled and run on one thread and freed
on another must leave both threads' signal stacks as they were (in a child process: the failure
is a crash)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from random_weights import random_weights
from tdn.config import REPO_ROOT


SIGNAL_STACK_SCRIPT = r"""
import ctypes, faulthandler, gc, json, signal, subprocess, sys, threading
import torch
from tdn.api import load_model
faulthandler.enable()  # gives the main thread a signal stack, as pytest and tdn do


class Stack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def signal_stack():
    stack = Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack))
    return [stack.ss_sp, stack.ss_size]


seen = {"start": signal_stack()}
model = load_model(sys.argv[1], precision="fp32", engine="openvino")
model(torch.zeros(1, 8, 5, 3, 64, 64))  # compiles and runs on this thread
seen["after running"] = signal_stack()
holder = [model]
del model
freeing = threading.Thread(target=lambda: (holder.clear(), gc.collect()))  # freed on another thread
freeing.start()
freeing.join()
seen["after freeing"] = signal_stack()
handled = []
signal.signal(signal.SIGCHLD, lambda *_: handled.append(1))  # as torch's DataLoader does
for _ in range(20):
    subprocess.run(["true"], check=True)  # each exit signals this thread
seen["signals handled"] = len(handled)
print(json.dumps(seen))
"""


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_openvino_leaves_every_threads_signal_stack_as_it_was(tmp_path):
    """OpenVINO puts a signal stack of its own on the thread that runs a model and frees it with the
    model; freed on another thread, it left the first thread's stack pointing at freed memory, and
    the next signal killed the process (SIGSEGV, no traceback: the CI crashes of 2026-12-02)."""
    weights = random_weights(tmp_path / "tdn_r18.pt", arch="resnet18", variant="tdn")
    result = subprocess.run([sys.executable, "-c", SIGNAL_STACK_SCRIPT, str(weights)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["after running"] == seen["start"] and seen["after freeing"] == seen["start"], seen
    assert seen["signals handled"] >= 1, seen
