"""Stage two's lanes (``_Importer._graph_run``): a free lane takes the first task whose
predecessors are done; a failure stops the lanes and is raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import cast

import pytest

from gavel.legacy.importer import ImportOptions, _Importer, _Task
from gavel.legacy.reader import LegacySource


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def task(self, name: str, *, seconds: float = 0.0, error: str = "") -> Callable[[], None]:
        def run() -> None:
            with self.lock:
                self.events.append(("start", name))
            time.sleep(seconds)
            if error:
                raise RuntimeError(error)
            with self.lock:
                self.events.append(("end", name))

        return run

    def at(self, event: str, name: str) -> int:
        return self.events.index((event, name))


def _importer() -> _Importer:
    return _Importer(cast(LegacySource, None), ImportOptions())


@pytest.mark.django_db(transaction=True)
def test_a_free_lane_takes_the_first_task_whose_predecessors_are_done():
    recorder, importer = _Recorder(), _importer()
    tasks = [
        _Task("ledger", recorder.task("ledger", seconds=0.5)),
        _Task("orders", recorder.task("orders", seconds=0.1)),
        _Task("links", recorder.task("links"), after=("ledger", "orders")),
        # Its predecessor is not in the graph (a step an earlier run finished): done.
        _Task("id_map", recorder.task("id_map"), after=("listings",)),
        _Task("restore", recorder.task("restore"), after=("orders",)),
    ]

    importer._graph_run(tasks, lanes=2)

    assert {name for event, name in recorder.events if event == "end"} == {
        task.name for task in tasks
    }
    assert recorder.at("start", "links") > recorder.at("end", "ledger")
    assert recorder.at("start", "links") > recorder.at("end", "orders")
    # The second lane did not wait for the ledger: it took what was ready, in list order.
    assert recorder.at("start", "id_map") < recorder.at("end", "ledger")
    assert recorder.at("start", "restore") < recorder.at("end", "ledger")
    assert recorder.at("start", "id_map") < recorder.at("start", "restore")
    assert {task.name for task in tasks} <= set(importer.seconds)


@pytest.mark.django_db(transaction=True)
def test_a_failed_task_stops_the_lanes_and_is_raised():
    recorder, importer = _Recorder(), _importer()
    tasks = [
        _Task("ledger", recorder.task("ledger", seconds=0.3)),
        _Task("orders", recorder.task("orders", error="orders page refused")),
        _Task("links", recorder.task("links"), after=("orders",)),
        _Task("restore", recorder.task("restore"), after=("ledger",)),
    ]

    with pytest.raises(RuntimeError, match="orders page refused"):
        importer._graph_run(tasks, lanes=2)

    # The running task ended; nothing was taken after the failure.
    assert ("end", "ledger") in recorder.events
    started = {name for event, name in recorder.events if event == "start"}
    assert started == {"ledger", "orders"}


@pytest.mark.django_db
def test_inside_a_transaction_the_tasks_run_in_line_in_list_order():
    recorder, importer = _Recorder(), _importer()
    tasks = [
        _Task("ledger", recorder.task("ledger")),
        _Task("orders", recorder.task("orders")),
        _Task("links", recorder.task("links"), after=("ledger", "orders")),
    ]

    importer._graph_run(tasks, lanes=3)

    assert [name for event, name in recorder.events if event == "start"] == [
        "ledger",
        "orders",
        "links",
    ]
