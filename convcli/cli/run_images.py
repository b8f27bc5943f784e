"""What the ``apply`` and ``upsample`` commands do once click has parsed them: check
everything the command line alone decides, then run the batch
(:func:`convcli.jobs.run.run_batch`) and print what it reports.
"""

from __future__ import annotations

import os
import sys

import click

from convcli.cli import console
from convcli.cli import options as options_text
from convcli.cli.failures import fail
from convcli.conv import memory
from convcli.errors import ConvcliError, OutputError, ParameterError
from convcli.images import flatten, writing
from convcli.images.reading import DEFAULT_MAX_PIXELS
from convcli.jobs import advice, batch, report, run


def run_images(ctx: click.Context, options: dict, *, transpose: bool) -> None:
    """Read, filter, write and report every input; a failing input does not stop the
    others unless --fail-fast.

    Everything the command line alone decides is checked before the first input is
    read: options, kernels, output names and formats, the report file, that no
    output is an input and that output directories exist.
    """
    inputs = list(options["inputs"])
    try:
        _check_threads(options["threads"])
        colour = options["background"]
        background = None if colour is None else flatten.parse_colour(colour)
        steps = options_text.steps(ctx, options, transpose=transpose)
        protected = run.kernel_files(steps)
        targets = batch.plan_outputs(
            inputs, options["output"], fmt=options["fmt"], kernels=protected
        )
        _check_usage(options, inputs, targets, protected)
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
        fail_fast=options["fail_fast"],
        background=background,
        strip=options["strip"],
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
            worst = run.run_batch(
                inputs,
                targets,
                steps,
                job_options,
                _Printed(status, report_stream, steps),
                protected=protected,
                taken=taken,
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
    for option, value in (("-o", options["output"]), ("--report", options["report_path"])):
        if value == "-" and console.stdout_closed():
            raise OutputError(
                f"{option} - writes to standard output, which is closed (>&-); give "
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


def _check_threads(threads: int | None) -> None:
    """--threads or CONVCLI_THREADS, validated once (not once per image)."""
    from convcli.conv.engines import thread_count

    if threads:
        os.environ["CONVCLI_THREADS"] = str(threads)
    thread_count()
