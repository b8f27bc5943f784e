"""--scheduler values, and the runners behind them."""

from __future__ import annotations

import os

import pytest

from convcli.conv import engines
from convcli.errors import ParameterError, SchedulerError
from convcli.scale import schedulers


@pytest.mark.parametrize(
    "spec", ["threads", "processes", "local:1", "local:16", "tcp://10.0.0.5:8786", "tls://h:1"]
)
def test_accepted_schedulers(spec):
    assert schedulers.check_scheduler(spec) == spec


@pytest.mark.parametrize("spec", ["thread", "local", "local:0", "local:x", "10.0.0.5:8786"])
def test_refused_schedulers_name_the_accepted_forms(spec):
    with pytest.raises(ParameterError, match="use threads, processes, local:N or tcp://HOST:PORT"):
        schedulers.check_scheduler(spec)


def _engine_threads() -> int:
    return engines.thread_count()


def _environment(name: str) -> str | None:
    return os.environ.get(name)


def test_threads_run_each_call_on_one_engine_thread():
    with schedulers.open_runner("threads") as runner:
        assert runner.workers == engines.thread_count()
        assert runner.submit(_engine_threads).result() == 1
    assert engines.thread_count() == runner.workers  # the caller's own count is untouched


def test_processes_are_spawned_with_the_worker_settings():
    with schedulers.open_runner("processes") as runner:
        assert runner.submit(_environment, "MALLOC_MMAP_THRESHOLD_").result() == str(
            schedulers.MMAP_THRESHOLD
        )
        assert runner.submit(_engine_threads).result() == 1


def test_an_unreachable_cluster_is_one_error_naming_the_way_out(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(schedulers, "CONNECT_SECONDS", 1)
    with pytest.raises(SchedulerError, match=r"cannot reach the scheduler .*local:N"):
        schedulers.open_runner("tcp://127.0.0.1:9")
