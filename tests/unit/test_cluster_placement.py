"""The controller's placement rule, on stand-in cells (no Ray): cameras go where the measured
headroom is, a lost cell's cameras go to the living ones, and nothing is placed twice."""
from __future__ import annotations

import asyncio
import time

import pytest

from pipelines.cluster.controller import ClusterController, _Cell
from tdn.config import Config


class _Method:
    def __init__(self, calls: list, name: str):
        self.calls, self.name = calls, name

    def remote(self, *args):
        self.calls.append((self.name, *args))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class StandInCell:
    """Records the calls the controller makes, as a Ray actor handle would receive them."""

    def __init__(self):
        self.calls: list = []

    def __getattr__(self, name):
        return _Method(self.calls, name)


def controller_with(capacities: dict[str, float], demand: float = 4.0) -> ClusterController:
    controller = ClusterController(Config())
    for name, capacity in capacities.items():
        controller._cells[name] = _Cell(name, StandInCell(), state="up", capacity=capacity, demand_per_camera=demand)
    return controller


def run(coroutine):
    return asyncio.run(coroutine)


def test_cameras_go_to_the_cell_with_the_most_measured_headroom():
    controller = controller_with({"big": 20.0, "small": 8.0})
    cells = [run(controller.add_camera("rtsp://127.0.0.1:8554/x", f"c{i}"))["cell"] for i in range(5)]
    # headroom big 20 -> 16 -> 12 -> 8 (tie with small's 8: fewer cameras wins) -> small 8 -> 4 ...
    assert cells == ["big", "big", "big", "small", "big"]
    assert run(controller.cells()) == [
        {"name": "big", "state": "up", "node": "", "capacity": 20.0, "demand": 16.0, "cameras": 4},
        {"name": "small", "state": "up", "node": "", "capacity": 8.0, "demand": 4.0, "cameras": 1}]
    added = [call for call in controller._cells["big"].handle.calls if call[0] == "add_camera"]
    assert [c[1] for c in added] == ["c0", "c1", "c2", "c4"]  # each camera given once, to one cell


def test_a_lost_cells_cameras_are_announced_and_placed_on_the_living_cells():
    controller = controller_with({"a": 16.0, "b": 16.0})
    for i in range(4):
        run(controller.add_camera("rtsp://viewer:s3cret@127.0.0.1:8554/x", f"c{i}"))
    on_a = sorted(c for c, cell in run(controller.assignment()).items() if cell == "a")
    controller._lost(controller._cells["a"], "it died (ActorDiedError)")
    assert all(run(controller.assignment())[c] is None for c in on_a)
    events, _, _ = run(controller.events_since(0))
    assert sorted(e["stream"] for e in events) == on_a
    assert all(e["status"] == "reconnecting" and "a is gone" in e["detail"] for e in events)
    for camera in list(controller._cameras.values()):  # what the watch loop does next
        if camera.cell is None:
            run(controller._place(camera))
    assert set(run(controller.assignment()).values()) == {"b"}
    assert "s3cret" not in str(run(controller.cameras()))  # URLs are masked in every answer


def test_a_reader_of_the_log_before_a_restart_reads_the_new_log_from_its_start():
    """A restarted controller numbers its log from 0 again: a reader holding a later number (from
    the controller before) gets the new log from its start, not nothing until the log catches up."""
    controller = controller_with({"a": 16.0})
    for i in range(3):
        controller._emit({"event": "status", "stream": f"c{i}", "status": "live", "detail": ""})
    events, next_seq, lost = run(controller.events_since(500))
    assert [e["stream"] for e in events] == ["c0", "c1", "c2"] and next_seq == 3 and lost == 0
    assert run(controller.events_since(3)) == ([], 3, 0)  # at the end: nothing new, not a restart


@pytest.mark.parametrize("url,name,message", [
    ("ftp://cam/x", None, "ftp"),
    ("rtsp://127.0.0.1:8554/x", "bad name!", "camera name 'bad name!' must be"),
    ("rtsp://127.0.0.1:8554/x", "c0", "camera name 'c0' is already in use"),
])
def test_bad_urls_and_names_are_refused_with_the_reason(url, name, message):
    controller = controller_with({"a": 16.0})
    run(controller.add_camera("rtsp://127.0.0.1:8554/x", "c0"))
    with pytest.raises(ValueError, match=message.replace("!", "!").replace("(", r"\(")):
        run(controller.add_camera(url, name))
    with pytest.raises(ValueError, match="no camera 'nope'; cameras: c0"):
        run(controller.remove_camera("nope"))


def test_cells_that_die_while_starting_are_started_again_after_a_growing_pause():
    controller = controller_with({"up": 16.0})
    for n, pause in enumerate([2, 4, 8], 1):
        cell = controller._cells[f"cell-{n}"] = _Cell(f"cell-{n}", StandInCell())  # starting
        lost_at = time.monotonic()
        controller._lost(cell, "it died (ActorDiedError: no such weights file)")
        assert pause <= controller._next_start - lost_at <= pause + 1
        detail = run(controller.cells())[-1]["detail"]
        assert detail.endswith(f"no such weights file); {n} in a row died while starting: next cell in {pause} s")
    controller._start_cells()  # still pausing: nothing started, nothing removed, the reasons stay on show
    assert [c["state"] for c in run(controller.cells())] == ["up", "dead", "dead", "dead"]
    for _ in range(20):
        controller._lost(_Cell("again", StandInCell()), "it died")
    assert controller._next_start - time.monotonic() <= 300  # the pause stops growing at START_BACKOFF_S[1]


def test_a_cell_that_dies_after_serving_is_replaced_without_a_pause():
    controller = controller_with({"a": 16.0, "b": 16.0})
    controller._lost(controller._cells["a"], "it died (ActorDiedError)")
    assert controller._next_start == 0.0 and controller._failed_starts == 0
