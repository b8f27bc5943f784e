"""Where blocks and files run: ``--scheduler threads|processes|local:N|tcp://HOST:PORT``.

- ``threads`` (the default): a pool of this process's threads, one block each (the
  engines single-threaded inside a block): no other process, no port, nothing to install.
- ``processes``: a pool of local worker processes (spawned, so that no thread state is
  forked), each block's inputs pickled to it; for work that holds the GIL.
- ``local:N``: a ``dask.distributed.LocalCluster`` of N single-threaded worker processes
  on this machine (ports on localhost; the ``[dask]`` extra).
- ``tcp://HOST:PORT`` (any ``scheme://`` address): the scheduler of a running
  ``dask.distributed`` cluster (``dask scheduler`` / ``dask worker``); its workers need
  ``convcli[dask]`` and the same paths as this machine.

A :class:`Runner` submits calls and returns futures (``.result()``), whatever runs them:
the streaming writer keeps a bounded number in flight and takes their results in order.
Worker processes get glibc's mmap threshold (``MALLOC_MMAP_THRESHOLD_``), so that block-
sized arrays go back to the system when freed, and one engine thread each.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import re
from collections.abc import Callable
from dataclasses import replace

from convcli.conv import engines
from convcli.errors import DependencyError, ParameterError, SchedulerError
from convcli.scale.blocks import MMAP_THRESHOLD

SCHEDULERS = "threads, processes, local:N or tcp://HOST:PORT"
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "CONVCLI_THREADS": "1"}
CONNECT_SECONDS = 10


def check_scheduler(spec: str | None) -> str:
    """``spec`` as given, validated (None: ``threads``); a :class:`ParameterError` names the
    accepted forms.

    Examples
    --------
    >>> check_scheduler(None), check_scheduler("local:2"), check_scheduler("tcp://h:8786")
    ('threads', 'local:2', 'tcp://h:8786')
    >>> check_scheduler("local:0")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ParameterError: --scheduler 'local:0': ...
    """
    text = (spec or "threads").strip()
    if text in ("threads", "processes") or re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", text):
        return text
    found = re.fullmatch(r"local:(\d+)", text)
    if found and int(found[1]) >= 1:
        return text
    raise ParameterError(
        f"--scheduler {spec!r}: use {SCHEDULERS} (a LocalCluster of N >= 1 workers, or the "
        f"address of a dask.distributed scheduler)"
    )


def is_distributed(spec: str) -> bool:
    """Whether ``spec`` (checked) runs on ``dask.distributed``."""
    return spec.startswith("local:") or "://" in spec


class Runner:
    """Calls run somewhere: :meth:`submit` returns a future, :meth:`share` an object to
    pass to many calls (sent once to a cluster)."""

    workers = 1

    def submit(self, func: Callable, *args):
        raise NotImplementedError

    def share(self, value):
        return value

    def as_completed(self, futures):
        """``futures`` as they finish."""
        return concurrent.futures.as_completed(futures)

    def stop(self, futures) -> None:
        """Cancel ``futures`` not yet started and wait for those running."""
        for future in futures:
            future.cancel()
        concurrent.futures.wait(futures)

    def close(self) -> None:
        pass

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _one_engine_thread(func: Callable, *args):
    """``func(*args)`` with the engines on one thread: the pool's threads are the
    parallel unit, and tile threads inside them would oversubscribe the cores."""
    with engines.using(replace(engines.settings(), threads=1)):
        return func(*args)


class InlineRunner(Runner):
    """Each call run at once in the calling thread (a cluster worker's own blocks)."""

    def submit(self, func, *args):
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(_one_engine_thread(func, *args))
        except Exception as err:  # handed over as a thread pool would
            future.set_exception(err)
        return future


class ThreadRunner(Runner):
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="convcli-block"
        )

    def submit(self, func, *args):
        return self.pool.submit(_one_engine_thread, func, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def is_local(spec: str) -> bool:
    """Whether ``spec`` runs in this process (files side by side, blocks on threads)."""
    return spec == "threads"


def _worker_setup() -> None:
    os.environ.update(WORKER_ENV)
    from convcli.scale.blocks import return_freed_memory

    return_freed_memory()


class ProcessRunner(Runner):
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup
        )

    def submit(self, func, *args):
        return self.pool.submit(func, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class ClusterRunner(Runner):
    """A ``dask.distributed`` client: of a LocalCluster it started, or of a running one."""

    def __init__(self, spec: str) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise DependencyError(
                f"--scheduler {spec} needs dask.distributed, which could not be imported "
                f"({err}): pip install 'convcli[dask]'"
            ) from None
        self.cluster = None
        try:
            if spec.startswith("local:"):
                self.cluster = LocalCluster(
                    n_workers=int(spec.split(":")[1]),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: 8787 may be taken
                    env=WORKER_ENV,
                    # The workers' own notes (a task cancelled by --fail-fast) are theirs,
                    # not lines for this command's stderr.
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self.cluster, set_as_default=False)
            else:
                self.client = Client(spec, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as err:
            self.close()
            raise SchedulerError(
                f"--scheduler {spec}: cannot reach the scheduler ({err}); start one with "
                f"'dask scheduler' and workers with 'dask worker {spec}', or use "
                f"--scheduler local:N"
            ) from None
        self.workers = max(1, sum(self.client.nthreads().values()))

    def submit(self, func, *args):
        return self.client.submit(func, *args, pure=False)

    def share(self, value):
        return self.client.scatter(value, broadcast=True, hash=False)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures, loop=self.client.loop)

    def stop(self, futures) -> None:
        # A task already running on a worker cannot be waited for once cancelled: it may
        # still write a block into an output this process is removing.
        if futures:
            self.client.cancel(futures)

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_runner(spec: str | None) -> Runner:
    """The :class:`Runner` of a ``--scheduler`` value (see the module's list)."""
    spec = check_scheduler(spec)
    workers = engines.thread_count()
    if spec == "threads":
        return ThreadRunner(workers)
    if spec == "processes":
        return ProcessRunner(workers)
    return ClusterRunner(spec)
