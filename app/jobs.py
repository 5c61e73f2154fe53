"""A bound on clip jobs across all sessions: a few run at once, a few more wait, the rest are
told the app is busy (a clip job decodes a whole file and runs the model many times)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class Busy(RuntimeError):
    """Every running and waiting place is taken; the message says so and asks to try again."""


class JobGate:
    """At most ``running`` jobs at once and ``waiting`` more queued; further requests raise :class:`Busy`."""

    def __init__(self, running: int, waiting: int):
        if running < 1 or waiting < 0:
            raise ValueError(f"need running >= 1 and waiting >= 0, got {running} and {waiting}")
        self.running, self.waiting = running, waiting
        self._admitted = threading.BoundedSemaphore(running + waiting)
        self._turns = threading.BoundedSemaphore(running)

    @contextmanager
    def turn(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold a running place for the ``with`` body; waits in the queue (calling ``on_wait`` once) if
        all are taken, raises :class:`Busy` when the queue is full too."""
        if not self._admitted.acquire(blocking=False):
            raise Busy(f"busy: {self.running} clip job(s) running and {self.waiting} waiting; try again in a minute")
        try:
            if not self._turns.acquire(blocking=False):
                if on_wait is not None:
                    on_wait()
                self._turns.acquire()
            try:
                yield
            finally:
                self._turns.release()
        finally:
            self._admitted.release()
