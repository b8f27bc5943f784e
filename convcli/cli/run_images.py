"""What the ``apply`` and ``upsample`` commands do once click has parsed them: check
everything the command line alone decides, then run the batch
(:func:`convcli.jobs.run.run_batch`) and print what it reports.
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial

import click

from convcli.cli import console
from convcli.cli import options as options_text
from convcli.cli.failures import fail
from convcli.conv import memory
from convcli.errors import ConvcliError, OutputError, ParameterError, shown_name
from convcli.images import flatten, writing, zarr_arrays
from convcli.images.identities import names_descriptor
from convcli.images.inputs import is_stream
from convcli.images.limits import MAX_FRAMES
from convcli.images.reading import DEFAULT_MAX_PIXELS
from convcli.jobs import advice, batch, report, run
from convcli.scale import batches, files, schedulers


def run_images(ctx: click.Context, options: dict, *, transpose: bool) -> None:
    """Read, filter, write and report every input; a failing input does not stop the
    others unless --fail-fast.

    Everything the command line alone decides is checked before the first input is
    read: options, kernels, output names and formats, the report file, that no
    output is an input and that output directories exist.
    """
    inputs = list(options["inputs"])
    chunks = options_text.chunks_spec(options["chunks"])
    try:
        _check_threads(options["threads"])
        colour = options["background"]
        background = None if colour is None else flatten.parse_colour(colour)
        spec = schedulers.check_scheduler(options["scheduler"])
        _check_tile(options["tile"])
        steps = options_text.steps(ctx, options, transpose=transpose)
        protected = run.kernel_files(steps)
        targets = batch.plan_outputs(
            inputs, options["output"], fmt=options["fmt"], kernels=protected
        )
        _check_usage(options, inputs, targets, protected)
        if any(run.format_of(target, options["fmt"]) == "ZARR" for target in targets):
            zarr_arrays.zarr_module()  # the extra it needs, named before any input is read
        # Blocks run on Dask: without it, refused now, before any input is read.
        if chunks is not None:
            schedulers.require_dask(f"--chunks {options['chunks']}: filtering in blocks")
        if not schedulers.is_local(spec):
            schedulers.require_dask(f"--scheduler {spec}")
        on_workers = not schedulers.is_local(spec) and len(inputs) > 1
        if on_workers:
            _check_files_for_workers(spec, inputs)
        batch.check_directories(targets)
    except ConvcliError as err:
        raise fail(err) from None

    job_options = run.JobOptions(
        value_range=options["value_range"],
        depth=int(options["depth"]) if options["depth"] else None,
        fmt=options["fmt"],
        compress_level=options["compress_level"],
        quality=options["quality"],
        max_pixels=options["max_pixels"] or DEFAULT_MAX_PIXELS,
        max_frames=options["max_frames"] or MAX_FRAMES,
        fail_fast=options["fail_fast"],
        background=background,
        strip=options["strip"],
        tile=options["tile"],
    )
    memory.reuse_freed_memory()  # image after image: no fresh page faults for each
    report_stream = report.ReportStream(options["report_path"])
    # Real paths that frame outputs (known only once an image is read) must not take.
    taken = set()
    if options["report_path"] not in (None, "-"):
        taken.add(os.path.realpath(options["report_path"]))
    try:
        with console.Status(len(inputs), options["quiet"]) as status:
            status.warn(advice.step_warnings(steps))
            events = _Printed(status, report_stream, steps)
            with contextlib.ExitStack() as stack:
                scheduler = stack.enter_context(_scheduler(spec))
                if on_workers:  # the files in partitions, each run by a worker
                    job = partial(
                        batches.file_job,
                        steps=steps,
                        options=job_options,
                        inputs=inputs if any("{frame}" in t for t in targets) else (),
                        protected=protected,
                        chunks=chunks,
                    )
                    worst = batches.run_batch(
                        scheduler, inputs, targets, job, events, fail_fast=job_options.fail_fast
                    )
                else:
                    # A decoded image's pixels are not sent to other processes: its blocks
                    # run on this process's threads.
                    local = scheduler
                    if not schedulers.is_local(spec):
                        local = stack.enter_context(_scheduler("threads"))
                    blocks = files.FileBlocks(
                        scheduler,
                        max_pixels=job_options.max_pixels,
                        max_frames=job_options.max_frames,
                        chunks=chunks,
                        # the cluster was asked for: send it the blocks
                        prefer=schedulers.is_distributed(spec),
                        local=local,
                        progress=status.blocks,
                    )
                    worst = run.run_batch(
                        inputs,
                        targets,
                        steps,
                        job_options,
                        events,
                        protected=protected,
                        taken=taken,
                        blocks=blocks,
                    )
    finally:
        report_stream.close()
    if report_stream.error is not None:
        click.echo(f"Error: {report_stream.error}", err=True)
        worst = max(worst, report_stream.error.exit_code)
    if worst:
        ctx.exit(worst)


class _Printed:
    """A batch's events on stderr (and in the --report stream)."""

    def __init__(
        self, status: console.Status, report_stream: report.ReportStream, steps: list
    ) -> None:
        self.status = status
        self.report_stream = report_stream
        self.steps = steps

    def warn(self, warnings: list[str]) -> None:
        self.status.warn(warnings)

    def done(self, record: report.ImageReport) -> None:
        self.status.note(report.text_line(record))
        self.status.warn(advice.clipping_warnings(record, self.steps))
        self.report_stream.write(report.json_record(record))

    def failed(self, error: ConvcliError, path: str, target: str | None) -> None:
        name, message = run.shown(path), str(error)
        text = message if message.startswith(name) else f"{name}: {message}"
        self.status.error(f"Error: {text}")
        self.report_stream.write(report.error_record(path, target, text))

    def progress(self, count: int) -> None:
        self.status.update(count)


def _check_usage(
    options: dict, inputs: list[str], targets: list[str], protected: list[str]
) -> None:
    """What is wrong with the command line itself: usage errors, before any input is read."""
    if options["report_path"] == "-" and options["output"] == "-":
        raise ParameterError("--report - and -o - would both write to stdout; send one to a file")
    named = [("-o", target) for target in targets] + [("--report", options["report_path"])]
    for option, value in named:
        to_stdout = value == "-" or (value is not None and names_descriptor(value, 1))
        if to_stdout and console.stdout_closed():  # /dev/stdout is then our /dev/null
            raise OutputError(
                f"{option} {value} writes to standard output, which is closed (>&-); give "
                f"{option} FILE, or leave standard output open"
            )
    if options["output"] == "-" and sys.stdout.isatty():
        raise ParameterError(
            "-o - writes image data to standard output, which is a terminal here; "
            "redirect it (> out.png, | another command) or give -o FILE"
        )
    batch.check_report_path(options["report_path"], inputs, targets, kernels=protected)
    if options["depth"]:  # a depth the format cannot hold is known before reading
        for target in targets:
            fmt = run.format_of(target, options["fmt"])
            writing.check_encodable(
                target, fmt, depth=int(options["depth"]), channels=1, error=ParameterError
            )


@contextlib.contextmanager
def _scheduler(spec: str):
    """The scheduler of ``--scheduler`` (a cluster reached, or started, here), closed after."""
    try:
        scheduler = schedulers.open_scheduler(spec)
    except ConvcliError as err:
        raise fail(err) from None
    with scheduler:
        yield scheduler


def _check_tile(tile: int | None) -> None:
    if tile is not None and tile % 16:
        raise ParameterError(
            f"--tile {tile}: TIFF tiles are multiples of 16 pixels a side; use "
            f"{max(16, tile // 16 * 16)} or {tile // 16 * 16 + 16}"
        )


def _check_files_for_workers(scheduler: str, inputs: list[str]) -> None:
    """Workers open the files by name: standard input and pipes stay here."""
    for path in inputs:
        if is_stream(path):
            raise ParameterError(
                f"--scheduler {scheduler} runs each file on a worker, which cannot read "
                f"{'standard input' if path == '-' else f'the pipe {shown_name(path)}'}; "
                f"save it to a file first, or leave --scheduler out"
            )


def _check_threads(threads: int | None) -> None:
    """--threads or CONVCLI_THREADS, validated once (not once per image)."""
    from convcli.conv.engines import thread_count

    if threads:
        os.environ["CONVCLI_THREADS"] = str(threads)
    thread_count()
