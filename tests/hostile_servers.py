"""Hostile loopback servers for stream tests: each listens on 127.0.0.1 and misbehaves in one way.

Import from a test as ``from hostile_servers import HostileServer`` (pytest puts ``tests/`` on
``sys.path``). Use as a context manager; ``url(scheme)`` is ``SCHEME://127.0.0.1:PORT/x``.
Behaviours (``HostileServer(behaviour)``):

- ``silent``: accepts, reads the request, never answers (keeps the connection open);
- ``garbage``: accepts and sends random bytes without line breaks (so never a complete reply
  line for RTSP or HTTP), about 4 KiB every 50 ms;
- ``close``: accepts and closes at once;
- ``html``: answers any request with ``200 OK`` and an HTML page;
- ``empty``: answers ``200 OK`` with an empty body;
- ``unauthorized``: answers ``401 Unauthorized`` (with a Basic challenge).
"""
from __future__ import annotations

import random
import socket
import threading

_HTML = b"<!doctype html><html><head><title>Camera login</title></head><body><form>user</form></body></html>\n"
_REPLIES = {
    "html": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(_HTML) + _HTML,
    "empty": b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "unauthorized": b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n",
}
_GARBAGE = bytes(b for b in random.Random(11).randbytes(4096) if b not in b"\r\n")
BEHAVIOURS = ("silent", "garbage", "close", *_REPLIES)


class HostileServer:
    """A TCP server on 127.0.0.1 with one bad ``behaviour``; counts ``connections`` and, for
    ``silent``, ``hung_up``: connections the client closed."""

    def __init__(self, behaviour: str):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; expected one of {BEHAVIOURS}")
        self.behaviour = behaviour
        self.connections = 0
        self.hung_up = 0
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name=f"hostile {behaviour}", daemon=True)

    def url(self, scheme: str, path: str = "/x") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self._listener.close()
        with self._lock:
            for client in self._clients:
                client.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.connections += 1
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.behaviour == "close":
                client.close()
            elif self.behaviour == "silent":
                client.settimeout(0.2)
                while not self._stop.is_set():
                    try:
                        if not client.recv(4096):
                            with self._lock:
                                self.hung_up += 1
                            return
                    except socket.timeout:
                        pass
            elif self.behaviour == "garbage":
                while not self._stop.wait(0.05):
                    client.sendall(_GARBAGE)
            else:
                client.settimeout(5)
                client.recv(4096)  # the request
                client.sendall(_REPLIES[self.behaviour])
                client.close()
        except OSError:
            pass  # the client went away
