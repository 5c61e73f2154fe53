"""Shared fixtures and the test kinds.

Every test is marked by its folder: ``tests/unit`` -> ``unit`` (fast, in-process, no threads,
processes or sockets: enforced there), ``tests/integration`` and ``tests/hostile`` ->
``integration`` (real servers, browsers, capture threads). ``pytest -m unit`` runs the quick kind.
The fixture ``rtsp_server`` is a real RTSP server on 127.0.0.1 (``tests/loopback.py``).
"""
from __future__ import annotations

import pytest

from loopback import RtspServer, free_port


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.unit if item.path.parent.name == "unit" else pytest.mark.integration)


@pytest.fixture
def rtsp_server():
    """A running loopback RTSP server streaming a 64x48 25 fps H.264 test pattern at ``.url``."""
    server = RtspServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()
