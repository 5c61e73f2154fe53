"""Unit tests: fast, in this process, no threads, processes or sockets of their own.

The fixture below makes that a rule rather than a habit: a unit test that starts a thread, a
process or a network connection fails, naming what it started. Tests that need real parts
(servers, browsers, capture threads, the streaming service) live in ``tests/integration``.
"""
from __future__ import annotations

import socket
import subprocess
import threading

import pytest


@pytest.fixture(autouse=True)
def nothing_concurrent(monkeypatch):
    def refuse(what: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"a unit test started {what}; tests that need one belong in tests/integration")
        return refused

    monkeypatch.setattr(threading.Thread, "start", refuse("a thread"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("a process"))
    monkeypatch.setattr(socket.socket, "connect", refuse("a network connection"))
    monkeypatch.setattr(socket.socket, "bind", refuse("a listening socket"))
