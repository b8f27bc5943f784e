"""What the ``apply`` and ``upsample`` commands do once click has parsed them.

This is the command line's own layer (it prints and sets exit codes); the work
itself is in the library modules it calls.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import click
import numpy as np

from convcli import batch, console, imageio, imagewrite, memory, pipeline, report
from convcli import options as options_text
from convcli.cli import fail
from convcli.errors import ConvcliError, ParameterError, ResourceError


def kernel_files(steps: list[pipeline.Step]) -> list[str]:
    """The files the kernels were read from (outputs and --report must never overwrite them)."""
    return list(dict.fromkeys(path for step in steps for path in step.filter.files))


@dataclass
class Loaded:
    path: str
    target: str
    image: imageio.Image
    output_shape: tuple[int, ...] = ()
    depth: int = 8

    @property
    def batch_key(self) -> tuple:
        """Images with equal keys can run as one (N, C, H, W) batch."""
        return self.image.pixels.shape[1:], self.image.has_alpha, self.image.depth


_BATCH_PIXELS = 1 << 27  # values per batch: keeps a batch's memory in hand


def _check_usage(
    options: dict, inputs: list[str], targets: list[str], protected: list[str]
) -> None:
    """What is wrong with the command line itself: usage errors, before any input is read."""
    if options["report_path"] == "-" and options["output"] == "-":
        raise ParameterError("--report - and -o - would both write to stdout; send one to a file")
    if options["output"] == "-" and sys.stdout.isatty():
        raise ParameterError(
            "-o - writes image data to standard output, which is a terminal here; "
            "redirect it (> out.png, | another command) or give -o FILE"
        )
    batch.check_report_path(options["report_path"], inputs, targets, kernels=protected)
    if options["depth"]:  # a depth the format cannot hold is known before reading
        for target in targets:
            fmt = _format_of(target, options)
            imagewrite.check_encodable(
                target, fmt, depth=int(options["depth"]), channels=1, error=ParameterError
            )


def _check_threads(threads: int | None) -> None:
    """--threads or CONVCLI_THREADS, validated once (not once per image)."""
    from convcli._fast import thread_count

    if threads:
        os.environ["CONVCLI_THREADS"] = str(threads)
    thread_count()


def run_images(ctx: click.Context, options: dict, *, transpose: bool) -> None:
    """Read each input (the next one while this one is filtered), filter consecutive
    same-shaped images as one batch, write and report; a failing input does not
    stop the others unless --fail-fast.

    Everything the command line alone decides is checked before the first input is
    read: options, kernels, output names and formats, the report file, that no
    output is an input and that output directories exist.
    """
    inputs = list(options["inputs"])
    try:
        _check_threads(options["threads"])
        steps = options_text.steps(ctx, options, transpose=transpose)
        protected = kernel_files(steps)
        targets = batch.plan_outputs(
            inputs, options["output"], fmt=options["fmt"], kernels=protected
        )
        _check_usage(options, inputs, targets, protected)
        batch.check_directories(targets)
    except ConvcliError as err:
        raise fail(err) from None

    worst = 0
    max_pixels = options["max_pixels"] or imageio.DEFAULT_MAX_PIXELS
    report_stream = report.ReportStream(options["report_path"])
    # Real paths that frame outputs (known only once an image is read) must not take.
    taken = set()
    if options["report_path"] not in (None, "-"):
        taken.add(os.path.realpath(options["report_path"]))

    def failed(err: ConvcliError, what: str, target: str | None = None) -> None:
        nonlocal worst
        shown = _shown(what)
        message = str(err)
        text = message if message.startswith(shown) else f"{shown}: {message}"
        status.error(f"Error: {text}")
        report_stream.write(report.error_record(what, target, text))
        worst = max(worst, err.exit_code)
        if options["fail_fast"]:
            ctx.exit(worst)

    def run(group: list[Loaded]) -> None:
        job = _Job(steps, options, inputs, protected, report_stream, status, taken, failed)
        job.run(group)
        status.update(len(group))

    try:
        with console.Status(len(inputs), options["quiet"]) as status:
            group: list[Loaded] = []
            for path, target, outcome in _read_ahead(inputs, targets, max_pixels):
                if isinstance(outcome, imageio.Image):
                    status.warn(outcome.warnings)
                    item = Loaded(path, target, outcome)
                    try:
                        _plan_item(item, steps, options, inputs, protected, taken)
                    except ConvcliError as err:
                        outcome = err
                if isinstance(outcome, ConvcliError):
                    if group:  # keep messages in input order
                        run(group)
                        group = []
                    failed(outcome, path, target)
                    status.update(1)
                    continue
                size = sum(i.image.pixels.size for i in group) + outcome.pixels.size
                if group and (item.batch_key != group[0].batch_key or size > _BATCH_PIXELS):
                    run(group)
                    group = []
                group.append(item)
            if group:
                run(group)
    finally:
        report_stream.close()
    if report_stream.error is not None:
        click.echo(f"Error: {report_stream.error}", err=True)
        worst = max(worst, report_stream.error.exit_code)
    if worst:
        ctx.exit(worst)


def _read_ahead(inputs: list[str], targets: list[str], max_pixels: int):
    """Yield (path, target, Image or the ConvcliError reading it), in input order,
    decoding the next input on a background thread while the caller works on this one."""

    def read(path: str) -> imageio.Image | ConvcliError:
        try:
            return imageio.read_image(path, max_pixels=max_pixels)
        except ConvcliError as err:
            return err
        except MemoryError:
            return ResourceError(f"{_shown(path)}: {_OUT_OF_MEMORY} reading it; {_SMALLER}")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="convcli-read") as reader:

        def start(index: int):
            # Standard input is read in the foreground: a blocked read in a worker
            # thread would keep Ctrl-C from ending the process.
            if index >= len(inputs) or inputs[index] == "-":
                return None
            return reader.submit(read, inputs[index])

        pending = start(0)
        for index, (path, target) in enumerate(zip(inputs, targets, strict=True)):
            outcome = read(path) if pending is None else pending.result()
            pending = start(index + 1)
            yield path, target, outcome


_OUT_OF_MEMORY = "ran out of memory"
_SMALLER = "use smaller images, or fewer at once"


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _shown(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _plan_item(
    item: Loaded, steps, options, inputs: list[str], protected: list[str], taken: set[str]
) -> None:
    """Before filtering: the output shape (from the geometry), the depth, and whether
    the output format can hold them; frame outputs are checked against the inputs."""
    image = item.image
    item.output_shape = pipeline.output_shape(image.pixels.shape, steps, has_alpha=image.has_alpha)
    fmt = _format_of(item.target, options)
    depth = int(options["depth"]) if options["depth"] else (16 if image.depth >= 16 else 8)
    if depth == 16 and image.depth == 32 and not options["depth"]:
        depth = 16 if fmt in ("PNG", "TIFF") else 8
    item.depth = depth
    frames, channels = item.output_shape[:2]
    paths = _frame_paths(item.target, frames)
    if "{frame}" in item.target:
        batch.check_frame_paths(paths, inputs, taken, kernels=protected)
    imagewrite.check_encodable(
        paths[0],
        fmt,
        depth=depth,
        channels=channels,
        frames=1 if "{frame}" in item.target else frames,
        fmt_name=options["fmt"],
        error=ParameterError,
    )


def _frame_paths(target: str, frames: int) -> list[str]:
    if "{frame}" in target:
        return [batch.frame_path(target, n) for n in range(frames)]
    return [target]


class _Job:
    """Filtering a group of same-shaped images and writing each result; a failure
    of one item is reported for that item only."""

    def __init__(
        self, steps, options, inputs, protected, report_stream, status, taken, failed
    ) -> None:
        self.steps = steps
        self.options = options
        self.inputs = inputs
        self.protected = protected  # kernel files
        self.report_stream = report_stream
        self.status = status
        self.taken = taken
        self.failed = failed

    def run(self, group: list[Loaded]) -> None:
        try:
            self._run(group)
        except (ConvcliError, MemoryError) as err:
            if len(group) > 1 and isinstance(err, (MemoryError, ResourceError)):
                for item in group:  # one at a time may fit
                    self.run([item])
                return
            if isinstance(err, MemoryError):
                err = ResourceError(f"{_OUT_OF_MEMORY} filtering it; {_SMALLER}")
            for item in group:
                self.failed(err, item.path, item.target)

    def _run(self, group: list[Loaded]) -> None:
        first = group[0].image
        shape = (sum(item.image.pixels.shape[0] for item in group), *first.pixels.shape[1:])
        needed = pipeline.estimate_bytes(shape, self.steps, has_alpha=first.has_alpha)
        available = memory.available_bytes()
        if available is not None and needed > available:
            raise ResourceError(
                f"this job needs about {_size(needed)} and {_size(available)} is available "
                f"to this process; {_SMALLER}, or a smaller output (--stride)"
            )
        x = (
            np.concatenate([item.image.pixels for item in group])
            if len(group) > 1
            else group[0].image.pixels
        )
        start = time.perf_counter()
        result = pipeline.apply_steps(x, self.steps, has_alpha=group[0].image.has_alpha)
        del x
        seconds = (time.perf_counter() - start) / len(group)
        # A batch's warnings concern all of its images: name them.
        names = ", ".join(_shown(item.path) for item in group)
        self.status.warn([f"{names}: {warning}" for warning in result.warnings])
        offset = 0
        for item in group:
            frames = item.image.pixels.shape[0]
            sl = slice(offset, offset + frames)
            offset += frames
            try:
                self._write_item(item, result, sl, seconds)
            except ConvcliError as err:
                self.failed(err, item.path, item.target)
            except MemoryError:
                error = ResourceError(f"{_OUT_OF_MEMORY} writing it; {_SMALLER}")
                self.failed(error, item.path, item.target)

    def _write_item(self, item: Loaded, result, sl: slice, seconds: float) -> None:
        options = self.options
        fmt = _format_of(item.target, options)
        # .npy keeps raw values unless a --range was asked for.
        value_range = options["value_range"] or (None if fmt == "NPY" else "clip")
        pixels, clipped_low, clipped_high = pipeline.map_range(
            result.values[sl], value_range, bounds=(result.minimum[sl], result.maximum[sl])
        )
        written = self._write(pixels, item.target, item.depth, alpha=result.has_alpha)
        record = report.ImageReport(
            item.path,
            written[0] if len(written) == 1 else item.target,
            item.image.pixels.shape,
            pixels.shape,
            list(zip(result.weight_shapes, result.geometries, strict=True)),
            float(result.minimum[sl].min()),
            float(result.maximum[sl].max()),
            int(clipped_low.sum()),
            int(clipped_high.sum()),
            seconds,
            outputs=tuple(written),
        )
        self.status.note(report.text_line(record))
        self.report_stream.write(report.json_record(record))

    def _write(self, pixels: np.ndarray, target: str, depth: int, *, alpha: bool) -> list[str]:
        """Write one image's frames (one file each when the target names {frame});
        return the paths written."""
        options = self.options
        kwargs = {
            "alpha": alpha,
            "depth": depth,
            "fmt": options["fmt"],
            "compress_level": options["compress_level"],
            "quality": options["quality"],
        }
        if "{frame}" in target:
            paths = _frame_paths(target, len(pixels))
            # Checked when the image was read; again here, in case the frame count changed.
            batch.check_frame_paths(paths, self.inputs, self.taken, kernels=self.protected)
            for n, path in enumerate(paths):
                self.status.warn(imagewrite.write_image(pixels[n], path, **kwargs))
                self.taken.add(os.path.realpath(path))
            return paths
        self.status.warn(imagewrite.write_image(pixels, target, **kwargs))
        return [target]


def _format_of(target: str, options) -> str:
    from convcli.outputs import output_format_for

    return output_format_for(batch.frame_path(target, 0), options["fmt"])
