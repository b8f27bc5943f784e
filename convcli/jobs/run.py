"""Running the per-file job (:func:`convcli.jobs.one_file.run_file`) over a batch of
inputs: several images in flight at once, everything reported and put in place in
input order.

What happens is told to an :class:`Events` object (warnings, finished images, failed
inputs, progress); the command line prints it, a Dask worker sends it back. A failing
input becomes a failure event while the others go on, unless ``fail_fast``.

How the cores are used (measured on 2 cores; see docs/design.md):

- Images run side by side, one per worker thread (``--threads``, else every core),
  each decoded, filtered, encoded and written on its own thread, its tiles not
  handed to the shared tile pool (``engines.using``): for many small images
  that beats cutting each image into tiles over the cores (hand-offs, idle tails).
- A large image (from :data:`LARGE` values) is filtered and written with every
  thread, one at a time; the next input is decoded meanwhile.
- Finished outputs are fsynced on a small I/O pool as soon as their worker is done,
  and renamed into place by one thread (this one) in input order
  (:class:`~convcli.images.outputs.Staged`), while the workers go on. So messages,
  report records and outputs come in input order, and after an input fails with
  ``fail_fast`` no later output appears.
- An image refused or out of memory while others were in flight runs again alone.

Examples
--------
>>> from convcli.jobs.pipeline import Step
>>> from convcli.kernels import load_filter
>>> class Quiet:
...     def warn(self, warnings): pass
...     def done(self, record): print(record.output_shape)
...     def failed(self, error, path, target): print(error)
...     def progress(self, count): pass
>>> worst = run_batch(["no-such.png"], ["out.png"], [Step(load_filter("box:3"))],
...                   JobOptions(), Quiet())
no-such.png: no such file
>>> worst
1
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from typing import Protocol

from convcli.conv import engines
from convcli.conv.engines import thread_count
from convcli.conv.engines.blas import blas_threads
from convcli.errors import ConvcliError
from convcli.images import outputs
from convcli.images.inputs import is_stream
from convcli.jobs import batch, pipeline, report
from convcli.jobs.one_file import (  # noqa: F401 - the command line's names for them
    Blocks,
    JobOptions,
    Outcome,
    format_of,
    read_input,
    real_paths,
    run_file,
    shown,
)

# Values (N*C*H*W) from which an image is filtered with every thread, one image at a
# time: below it, images side by side; above it, two at once would also double the
# memory of a batch of large images.
LARGE = 1 << 24
_SYNC_THREADS = 4  # outputs being fsynced at once
_GRACE = 1.0  # seconds an interrupted batch waits for the images in flight


class Events(Protocol):
    """What a batch tells its caller, in input order."""

    def warn(self, warnings: list[str]) -> None: ...

    def done(self, record: report.ImageReport) -> None: ...

    def failed(self, error: ConvcliError, path: str, target: str | None) -> None: ...

    def progress(self, count: int) -> None: ...


def kernel_files(steps: Sequence[pipeline.Step]) -> list[str]:
    """The files the kernels were read from (outputs and --report must never overwrite them)."""
    return list(dict.fromkeys(path for step in steps for path in step.filter.files))


class _Stop(Exception):
    """--fail-fast: an input failed; nothing more is written."""


def run_batch(
    inputs: Sequence[str],
    targets: Sequence[str],
    steps: Sequence[pipeline.Step],
    options: JobOptions,
    events: Events,
    *,
    protected: Sequence[str] = (),
    taken: set[str] | None = None,
    blocks: Blocks | None = None,
) -> int:
    """Run every input to its target; return the worst exit code (0 when all went well).

    ``protected`` are files that no output may overwrite (kernel files); ``taken`` real
    paths that outputs known only once an image is read (``{frame}``) must not take;
    ``blocks`` filters in blocks the images it takes (see
    :class:`~convcli.jobs.one_file.Blocks`).
    """
    taken = set() if taken is None else taken
    job = partial(
        run_file,
        steps=steps,
        options=options,
        inputs=inputs,
        protected=protected,
        taken=taken,
        blocks=blocks,
    )
    batch_run = _Batch(inputs, targets, job, options, events, protected, taken)
    workers = min(thread_count(), len(inputs))
    try:
        if workers <= 1:
            for path, target in zip(inputs, targets, strict=True):
                batch_run.finish(job(path, target))
        else:
            # BLAS at one thread for the whole run (the workers are the parallelism),
            # set once rather than around every call.
            with blas_threads(1):
                batch_run.run_side_by_side(workers)
    except _Stop:
        pass
    return batch_run.worst


class _Batch:
    """The inputs' outcomes, finished in input order: warnings, outputs put in place,
    then the record or the error."""

    def __init__(self, inputs, targets, job, options, events, protected, taken) -> None:
        self.inputs, self.targets = list(inputs), list(targets)
        self.job = job
        self.options = options
        self.events = events
        self.protected = protected
        self.taken = taken
        self.worst = 0
        self.large = threading.Lock()
        self.stop = threading.Event()

    def run_side_by_side(self, workers: int) -> None:
        """Keep ``workers`` images in flight (and one more queued), finish them in order."""
        pending: deque[Future] = deque()  # each gives (outcome, its outputs' fsync)
        submitted = 0
        with _Threads(workers, "convcli-image") as pool, _Threads(_SYNC_THREADS, "sync") as syncer:

            def job(path: str, target: str, **given) -> tuple[Outcome, Future]:
                with engines.using(replace(engines.settings(), threads=1)):  # large lift it
                    outcome = self.job(path, target, filtering=self._lane, **given)
                # fsync waits for the disk: on threads of its own, several at a time
                # (the file system joins them into one journal commit).
                return outcome, syncer.submit(outcome.sync)

            def fill() -> None:
                nonlocal submitted
                while submitted < len(self.inputs) and len(pending) <= workers:
                    path, target = self.inputs[submitted], self.targets[submitted]
                    submitted += 1
                    pending.append(self._read_here(pool, job, path, target))

            outcome = None  # the one being finished; what is left of it goes if interrupted
            aborted = False
            try:
                fill()
                while pending:
                    outcome, synced = pending[0].result()
                    pending.popleft()
                    synced.result()
                    if outcome.short_of_memory and not is_stream(outcome.path):
                        # Others were in flight: let them end, then try this one alone.
                        concurrent.futures.wait(pending)
                        outcome = self.job(outcome.path, outcome.target)
                    fill()
                    self.finish(outcome)
            except _Stop:
                raise
            except BaseException:  # Ctrl-C, a signal, a closed pipe
                aborted = True
                raise
            finally:
                self._wind_down(pending, outcome, aborted)

    def _wind_down(self, pending: deque[Future], outcome: Outcome | None, aborted: bool) -> None:
        """Stop the batch: nothing more starts, and what the images in flight wrote goes.

        After ``--fail-fast`` the images in flight end first. Interrupted, the process is
        about to end and a worker may be blocked in a write (a slow disk, a pipe) that no
        signal breaks: it gets a moment, then every temporary not in place is removed.
        """
        self.stop.set()
        if outcome is not None:
            outcome.discard()
        for future in pending:
            future.cancel()
        done, _ = concurrent.futures.wait(pending, timeout=_GRACE if aborted else None)
        for future in done:
            if not future.cancelled() and future.exception() is None:
                future.result()[0].discard()
        if aborted:
            outputs.remove_unplaced(final=True)

    def _read_here(self, pool: _Threads, job, path: str, target: str) -> Future:
        """Submit ``job`` for an input; standard input and named pipes are read here
        first, in the foreground: a blocked read (or a pipe's open, waiting for a
        writer) in a worker thread would keep Ctrl-C or SIGTERM from ending the process."""
        if not is_stream(path):
            return pool.submit(job, path, target)
        started = time.perf_counter()  # the record's seconds count the read made here
        try:
            image = read_input(path, self.options)
        except ConvcliError as err:
            synced: Future = Future()
            synced.set_result(None)
            done: Future = Future()
            done.set_result((Outcome(path, target, error=err), synced))
            return done
        return pool.submit(job, path, target, image=image, started=started)

    @contextlib.contextmanager
    def _lane(self, values: int) -> Iterator[None]:
        """How a worker filters and writes an image of ``values`` values: large ones
        one at a time with every thread, others on the worker's thread alone (as it
        decoded them)."""
        if self.stop.is_set():
            raise _Cancelled
        if values >= LARGE:
            with self.large, engines.using(replace(engines.settings(), threads=None)):
                yield
        else:
            yield

    def finish(self, outcome: Outcome) -> None:
        """Report an outcome and put its outputs in place, or say why not."""
        self.events.warn(outcome.warnings)
        error = outcome.error
        if error is None:
            try:
                if "{frame}" in outcome.target:  # another input's frames may have come first
                    batch.check_frame_paths(
                        outcome.record.outputs, self.inputs, self.taken, kernels=self.protected
                    )
                outcome.commit()
                self.taken.update(real_paths(outcome))
            except ConvcliError as err:
                outcome.discard()
                error = err
        if error is None:
            self.events.done(outcome.record)
        else:
            self.worst = max(self.worst, error.exit_code)
            self.events.failed(error, outcome.path, outcome.target)
        self.events.progress(1)
        if error is not None and self.options.fail_fast:
            raise _Stop


class _Threads:
    """A fixed set of daemon threads running submitted calls. Unlike a
    ThreadPoolExecutor's, they never hold the process at its exit: a worker blocked in
    a write must not keep a signal from ending it."""

    def __init__(self, count: int, name: str) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.count = count
        for index in range(count):
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True).start()

    def submit(self, function, *args, **kwargs) -> Future:
        future: Future = Future()
        self.calls.put((future, function, args, kwargs))
        return future

    def _serve(self) -> None:
        while (call := self.calls.get()) is not None:
            future, function, args, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as err:  # handed to whoever waits for the result
                future.set_exception(err)

    def __enter__(self) -> _Threads:
        return self

    def __exit__(self, *exc) -> None:
        for _ in range(self.count):
            self.calls.put(None)


class _Cancelled(Exception):
    """The batch stopped (--fail-fast, Ctrl-C) before this image was filtered."""
