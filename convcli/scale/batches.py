"""A batch of files on worker processes or a cluster (``--scheduler processes|local:N|
tcp://...``): the files handed out in partitions, one Dask task each, each worker running
the same per-file job as a local batch (:func:`convcli.jobs.one_file.run_file`), its
outputs put in place by the worker, and what became of each file streamed back as
partitions finish (:meth:`convcli.scale.schedulers.Scheduler.each`).

A partition is a few files (about four partitions per worker, at most
:data:`MOST_PER_PARTITION` files): enough that the scheduler's cost per task is shared
by several files, few enough that the workers stay busy to the end and the reports
come back steadily. A failing file is a failure record; the others go on (``fail_fast``
cancels the partitions not yet started; those running finish).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from convcli.conv import engines
from convcli.errors import ConvcliError
from convcli.jobs import one_file, pipeline, report

MOST_PER_PARTITION = 32


@dataclass
class FileResult:
    """What a worker sends back for one file: its warnings, then its record or error."""

    path: str
    target: str
    warnings: list[str] = field(default_factory=list)
    record: report.ImageReport | None = None
    error: ConvcliError | None = None


def partitions(count: int, workers: int) -> list[range]:
    """``count`` files cut into partitions of consecutive files, about four per worker.

    Examples
    --------
    >>> partitions(10, 2)
    [range(0, 2), range(2, 4), range(4, 6), range(6, 8), range(8, 10)]
    >>> len(partitions(10_000, 2)), len(partitions(3, 8))
    (313, 3)
    """
    size = min(MOST_PER_PARTITION, max(1, math.ceil(count / (4 * max(1, workers)))))
    return [range(start, min(count, start + size)) for start in range(0, count, size)]


def run_partition(job: Callable[[str, str], FileResult], files: Sequence[tuple[str, str]]):
    """Run ``job`` on each ``(path, target)`` in a worker; a list of :class:`FileResult`."""
    return [job(path, target) for path, target in files]


class _Stop(Exception):
    """--fail-fast: a file failed; nothing more starts."""


def run_batch(
    scheduler,
    inputs: Sequence[str],
    targets: Sequence[str],
    job: Callable[[str, str], FileResult],
    events,
    *,
    fail_fast: bool = False,
) -> int:
    """Run ``job`` (picklable: a module-level function or a partial of one) on every
    input, in partitions on ``scheduler`` (:class:`~convcli.scale.schedulers.Scheduler`);
    tell ``events`` (see :class:`convcli.jobs.run.Events`) about each file as its
    partition finishes. Return the worst exit code."""
    files = list(zip(inputs, targets, strict=True))
    worst = 0

    def finished(results: list[FileResult]) -> None:
        nonlocal worst
        for result in results:
            events.warn(result.warnings)
            if result.error is None:
                events.done(result.record)
            else:
                worst = max(worst, result.error.exit_code)
                events.failed(result.error, result.path, result.target)
            events.progress(1)
            if result.error is not None and fail_fast:
                raise _Stop

    parts = [(job, [files[i] for i in part]) for part in partitions(len(files), scheduler.workers)]
    with contextlib.suppress(_Stop):
        scheduler.each(run_partition, parts, finished)
    return worst


def file_job(
    path: str,
    target: str,
    *,
    steps: Sequence[pipeline.Step],
    options: one_file.JobOptions,
    inputs: Sequence[str] = (),
    protected: Sequence[str] = (),
    chunks: tuple[int, int] | None = None,
) -> FileResult:
    """The per-file job as a worker runs it: on one engine thread (the worker's threads
    are the parallel unit), an image too large to filter whole in blocks in this
    worker, the outputs put in place at once."""
    from convcli.scale.files import FileBlocks
    from convcli.scale.schedulers import Inline

    blocks = FileBlocks(
        Inline(), max_pixels=options.max_pixels, max_frames=options.max_frames, chunks=chunks
    )
    with engines.using(engines.Settings(threads=1)):
        outcome = one_file.run_file(
            path, target, steps, options, inputs=inputs, protected=protected, blocks=blocks
        )
    if outcome.error is None:
        try:
            outcome.commit()
        except ConvcliError as err:
            outcome.error, outcome.record = err, None
    return FileResult(path, target, outcome.warnings, outcome.record, outcome.error)
