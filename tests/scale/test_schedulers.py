"""--scheduler values, and Dask's schedulers behind them."""

from __future__ import annotations

import os
import threading
import time

import pytest

from convcli.errors import ParameterError, SchedulerError
from convcli.scale import schedulers

dask_callbacks = pytest.importorskip("dask.callbacks")


@pytest.mark.parametrize(
    "spec", ["threads", "processes", "local:1", "local:16", "tcp://10.0.0.5:8786", "tls://h:1"]
)
def test_accepted_schedulers(spec):
    assert schedulers.check_scheduler(spec) == spec


@pytest.mark.parametrize("spec", ["thread", "local", "local:0", "local:x", "10.0.0.5:8786"])
def test_refused_schedulers_name_the_accepted_forms(spec):
    with pytest.raises(ParameterError, match="use threads, processes, local:N or tcp://HOST:PORT"):
        schedulers.check_scheduler(spec)


def _where(shared: dict, item: int) -> tuple:
    return shared["tag"], item, os.getpid(), threading.current_thread().name


def _environment(name: str) -> str | None:
    return os.environ.get(name)


class Seen(dask_callbacks.Callback):
    """Dask's own record of the tasks its local scheduler started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = []

    def _pretask(self, key, dsk, state) -> None:
        self.started.append(key)


def test_threads_are_dasks_threaded_scheduler_results_in_order():
    scheduler = schedulers.open_scheduler("threads")
    with Seen() as seen:
        got = scheduler.map(_where, {"tag": "x"}, [(i,) for i in range(9)])
    assert [(tag, item) for tag, item, _, _ in got] == [("x", i) for i in range(9)]
    assert {pid for _, _, pid, _ in got} == {os.getpid()}
    assert threading.current_thread().name not in {name for *_, name in got}
    assert len(seen.started) == 9  # every block a task of Dask's scheduler


def test_processes_are_dasks_multiprocessing_scheduler_with_the_worker_settings():
    with schedulers.open_scheduler("processes") as scheduler, Seen() as seen:
        got = scheduler.map(_where, {"tag": "y"}, [(i,) for i in range(5)])
        assert [(tag, item) for tag, item, _, _ in got] == [("y", i) for i in range(5)]
        assert os.getpid() not in {pid for _, _, pid, _ in got}
        heard = []
        names = [("MALLOC_MMAP_THRESHOLD_",), ("CONVCLI_THREADS",)]
        scheduler.each(_environment, names, heard.append)
        assert sorted(heard) == sorted([str(schedulers.MMAP_THRESHOLD), "1"])
    assert len(seen.started) == 5


class Tasks:
    """Calls that record when they start and end; item 0 fails at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.started = self.ended = 0

    def __call__(self, shared, item: int) -> int:
        with self.lock:
            self.running += 1
            self.started += 1
        try:
            if item == 0:
                raise ValueError("a damaged block")
            time.sleep(0.05)
            return item
        finally:
            with self.lock:
                self.running -= 1
                self.ended += 1


def test_a_failing_graph_leaves_no_task_running_and_starts_no_more():
    scheduler = schedulers.open_scheduler("threads")
    tasks = Tasks()
    with pytest.raises(ValueError, match="a damaged block"):
        scheduler.map(tasks, None, [(i,) for i in range(1, 40)] + [(0,)])
    assert tasks.running == 0
    started = tasks.started
    time.sleep(0.2)  # nothing left queued starts later either
    assert tasks.started == started < 40


def test_each_hands_results_over_as_they_come_and_an_error_from_the_caller_stops_it():
    scheduler = schedulers.open_scheduler("threads")
    heard = []

    def done(result):
        heard.append(result)
        if len(heard) == 2:
            raise KeyboardInterrupt

    tasks = Tasks()
    with pytest.raises(KeyboardInterrupt):
        scheduler.each(lambda item: tasks(None, item), [(i,) for i in range(1, 30)], done)
    assert len(heard) == 2 and tasks.running == 0 and tasks.started < 29


def test_an_unreachable_cluster_is_one_error_naming_the_way_out(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(schedulers, "CONNECT_SECONDS", 1)
    with pytest.raises(SchedulerError, match=r"cannot reach the scheduler .*local:N"):
        schedulers.open_scheduler("tcp://127.0.0.1:9")


def _mark(folder: str, band: int, item: int) -> tuple[int, int]:
    with open(os.path.join(folder, f"{band}-{item}"), "w"):
        pass
    return band, item


def test_a_cluster_computes_the_next_band_while_one_is_taken(tmp_path, cluster_address):
    # One graph a band left the workers idle between bands (1 -> 2 workers: 1.5x).
    bands = [[(b, i) for i in range(3)] for b in range(4)]
    with schedulers.open_scheduler(cluster_address) as scheduler:
        taken = scheduler.map_bands(_mark, str(tmp_path), bands)
        assert next(taken) == [(0, i) for i in range(3)]
        # Not asked for yet, band 1 is computed all the same.
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("1-*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(p.name for p in tmp_path.glob("1-*")) == ["1-0", "1-1", "1-2"]
        assert list(taken) == [[(b, i) for i in range(3)] for b in (1, 2, 3)]


def test_local_schedulers_take_bands_one_after_another(tmp_path):
    bands = [[(b, i) for i in range(3)] for b in range(3)]
    taken = schedulers.open_scheduler("threads").map_bands(_mark, str(tmp_path), bands)
    assert next(taken) == [(0, i) for i in range(3)]
    assert not list(tmp_path.glob("1-*"))  # one graph at a time in this process
    assert list(taken) == [[(b, i) for i in range(3)] for b in (1, 2)]
