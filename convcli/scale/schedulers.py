"""Where blocks and files run: ``--scheduler threads|processes|local:N|tcp://HOST:PORT``,
each one of Dask's schedulers (the ``[dask]`` extra).

- ``threads`` (the default): Dask's threaded scheduler (``dask.threaded.get``) on its
  pool of this process's threads, one block per thread (the engines single-threaded
  inside a block): no other process, no port.
- ``processes``: Dask's multiprocessing scheduler (``dask.multiprocessing.get``) on
  spawned worker processes, each task's inputs pickled to them. Dask would start (and
  stop) a pool at every call; the pool is started once per command instead, as Dask
  starts it (its context, its worker initializer, plus the worker settings below), and
  handed to Dask through its ``pool=`` argument.
- ``local:N``: a ``dask.distributed.LocalCluster`` of N single-threaded worker processes
  on this machine (ports on localhost).
- ``tcp://HOST:PORT`` (any ``scheme://`` address): the scheduler of a running
  ``dask.distributed`` cluster (``dask scheduler`` / ``dask worker``); its workers need
  ``convcli[dask]`` and the same paths as this machine.

A :class:`Scheduler` runs one Dask graph per call. :meth:`~Scheduler.map` computes
``func(shared, *item)`` for a list of items (a band of blocks), in parallel, and returns
the results in order; :meth:`~Scheduler.each` hands each result of ``func(*item)`` over
as it finishes (a batch's partitions). When either returns or raises, none of its tasks
runs any more here or in this command's worker processes (a failure or Ctrl-C waits for
those running, and those not started never start); a cluster cannot stop a running
task, which finishes on its worker (the block writers refuse to write into an output
that was removed). Worker processes get glibc's mmap threshold
(``MALLOC_MMAP_THRESHOLD_``), so that block-sized arrays go back to the system when
freed, and one engine thread each.

Nothing here imports Dask before it is used: ``threads`` costs nothing to a job that
fits in memory, and a job that needs blocks without Dask installed is refused by
:func:`require_dask` before anything is filtered.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from convcli.conv import engines
from convcli.errors import DependencyError, ParameterError, SchedulerError
from convcli.scale.blocks import MMAP_THRESHOLD

SCHEDULERS = "threads, processes, local:N or tcp://HOST:PORT"
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "CONVCLI_THREADS": "1"}
CONNECT_SECONDS = 10
INSTALL = "pip install 'convcli[dask]'"


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


def is_local(spec: str) -> bool:
    """Whether ``spec`` runs in this process (files side by side, blocks on threads)."""
    return spec == "threads"


def require_dask(what: str) -> None:
    """A :class:`DependencyError` naming the install command unless Dask can be imported;
    ``what`` is what needs it.

    Examples
    --------
    >>> require_dask("--chunks 64: filtering in blocks")  # installed here: nothing happens
    """
    try:
        import dask  # noqa: F401
    except ImportError as err:
        raise DependencyError(
            f"{what} needs Dask, which could not be imported ({err}): {INSTALL}"
        ) from None


class Cancelled(Exception):
    """A task of a graph that was stopped (a failure or Ctrl-C elsewhere in it)."""


_names = itertools.count()


def _name(prefix: str) -> str:
    """A graph key prefix used once in this process."""
    return f"convcli-{prefix}-{os.getpid()}-{next(_names)}"


class Scheduler:
    """One of Dask's schedulers (see the module's list)."""

    workers = 1

    def share(self, value):
        """``value`` as tasks of many calls take it (sent to a cluster once)."""
        return value

    def map(self, func: Callable, shared, items: Sequence[tuple]) -> list:
        """``[func(shared, *item) for item in items]``, computed in parallel as one graph."""
        raise NotImplementedError

    def map_bands(self, func: Callable, shared, bands: Iterable[Sequence[tuple]]) -> Iterator[list]:
        """:meth:`map` of each band of items, yielded in order as it is iterated. Here one
        band after another; a cluster computes the next band while this one is taken."""
        for items in bands:
            yield list(self.map(func, shared, items))

    def each(self, func: Callable, items: Sequence[tuple], done: Callable) -> None:
        """``done(func(*item))`` for every item, as each finishes (in any order), in the
        calling thread; an exception from ``done`` stops the rest."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Local(Scheduler):
    """Dask's schedulers in this process (``get``, ``get_async``): the graph is a dict, one
    task per item, the shared value one key of it."""

    def _get(self, graph: dict, keys: list, **options) -> list:
        raise NotImplementedError

    def _task(self, func: Callable):
        """How each task calls ``func``, and what stops them all (see :meth:`_stop`)."""
        return func, None

    def _stop(self, stopping) -> None:
        """After a graph stopped early: return once none of its tasks runs."""

    def map(self, func, shared, items):
        name, shared_key = _name("block"), _name("shared")
        run, stopping = self._task(func)
        graph = {shared_key: shared}
        graph.update({(name, i): (run, shared_key, *item) for i, item in enumerate(items)})
        try:
            return self._get(graph, [(name, i) for i in range(len(items))])
        except BaseException:
            self._stop(stopping)
            raise

    def each(self, func, items, done):
        name = _name("each")
        run, stopping = self._task(func)
        graph = {(name, i): (run, *item) for i, item in enumerate(items)}
        # Dask's callbacks (start, start_state, pretask, posttask, finish): it calls
        # posttask in this thread as each task's result comes in.
        heard = (None, None, None, lambda key, result, *_: done(result), None)
        try:
            self._get(graph, list(graph), callbacks=[heard])
        except BaseException:
            self._stop(stopping)
            raise


class _Guard:
    """The tasks of one graph on this process's threads: once :meth:`stop` is called none
    starts, and it returns when none runs (Dask's ``get`` returns on the first failure
    while the other tasks still run, and a block must not write into an output that is
    then removed)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.running = 0
        self.stopped = False

    def run(self, func: Callable, *args):
        with self.changed:
            if self.stopped:
                raise Cancelled
            self.running += 1
        try:
            return func(*args)
        finally:
            with self.changed:
                self.running -= 1
                self.changed.notify_all()

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.wait_for(lambda: not self.running)


class Threads(_Local):
    """Dask's threaded scheduler, on Dask's pool of ``workers`` threads."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def _task(self, func):
        guard = _Guard()
        return functools.partial(guard.run, func), guard

    def _stop(self, guard: _Guard) -> None:
        guard.stop()

    def _get(self, graph, keys, **options):
        import dask.threaded

        return dask.threaded.get(graph, keys, num_workers=self.workers, **options)


class Inline(_Local):
    """Dask's synchronous scheduler: every task in the calling thread, one after another
    (a cluster worker's own blocks: the worker's threads are the parallel unit)."""

    def _get(self, graph, keys, **options):
        import dask.local

        return dask.local.get_sync(graph, keys, **options)


def _worker_setup() -> None:
    os.environ.update(WORKER_ENV)
    from convcli.scale.blocks import return_freed_memory

    return_freed_memory()


class Processes(_Local):
    """Dask's multiprocessing scheduler on ``workers`` spawned processes, started once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None

    def _get(self, graph, keys, **options):
        import dask.multiprocessing

        if self.pool is None:  # what dask.multiprocessing.get would start for each call
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=dask.multiprocessing.get_context(),
                initializer=functools.partial(
                    dask.multiprocessing.initialize_worker_process, user_initializer=_worker_setup
                ),
            )
        # chunksize 1: a band's blocks (a batch's partitions) spread over every worker.
        return dask.multiprocessing.get(
            graph, keys, pool=self.pool, chunksize=1, optimize_graph=False, **options
        )

    def _stop(self, stopping) -> None:
        # The tasks handed to the pool: those queued are cancelled, those running waited
        # for; the next graph gets a new pool.
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._stop(None)


class Cluster(Scheduler):
    """A ``dask.distributed`` client: of a LocalCluster it started, or of a running one."""

    def __init__(self, spec: str) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise DependencyError(
                f"--scheduler {spec} needs dask.distributed, which could not be imported "
                f"({err}): {INSTALL}"
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

    def share(self, value):
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(self, func, shared, items):
        # One graph; its futures are released when get returns or raises, which cancels
        # the tasks not yet started.
        name = _name("block")
        graph = {(name, i): (func, shared, *item) for i, item in enumerate(items)}
        return self.client.get(graph, list(graph))

    def map_bands(self, func, shared, bands):
        # A band's last blocks would leave workers idle until the next graph came: the
        # next band is submitted before this one is gathered (two bands in flight; the
        # caller holds the results of two more at most).
        pending: collections.deque = collections.deque()

        def submit(items: Sequence[tuple]) -> list:
            name = _name("block")
            graph = {(name, i): (func, shared, *item) for i, item in enumerate(items)}
            return self.client.get(graph, list(graph), sync=False)

        bands = iter(bands)
        try:
            for items in itertools.islice(bands, 2):
                pending.append(submit(items))
            while pending:
                futures = pending.popleft()
                results = self.client.gather(futures)
                self.client.cancel(futures)  # gathered: the workers may forget them
                following = next(bands, None)
                if following is not None:
                    pending.append(submit(following))
                yield results
        finally:  # failed, interrupted, or the caller stopped iterating
            for futures in pending:
                self.client.cancel(futures)

    def each(self, func, items, done):
        from distributed import as_completed

        futures = [self.client.submit(func, *item, pure=False) for item in items]
        try:
            for future in as_completed(futures, loop=self.client.loop):
                done(future.result())
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_scheduler(spec: str | None) -> Scheduler:
    """The :class:`Scheduler` of a ``--scheduler`` value (see the module's list); all but
    ``threads`` need Dask now (``threads`` when it first runs blocks)."""
    spec = check_scheduler(spec)
    workers = engines.thread_count()
    if spec == "threads":
        return Threads(workers)
    require_dask(f"--scheduler {spec}")
    if spec == "processes":
        return Processes(workers)
    return Cluster(spec)
