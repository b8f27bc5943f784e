"""The per-file job of ``apply`` and ``upsample``, without the command line: read each
input (the next one while this one is filtered), plan and check its output, filter
consecutive same-shaped images as one batch, write each result and report it.

What happens is told to an :class:`Events` object (warnings, finished images, failed
inputs, progress); the command line prints it, a Dask worker sends it back. A failing
input becomes a failure event while the others go on, unless ``fail_fast``.

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

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from convcli.conv import memory
from convcli.errors import ConvcliError, ParameterError, ResourceError
from convcli.images import reading, writing
from convcli.images.inputs import is_stream
from convcli.images.outputs import output_format_for
from convcli.jobs import batch, pipeline, report


@dataclass(frozen=True)
class JobOptions:
    """How results become files: what ``apply`` and ``upsample`` take besides the steps."""

    value_range: str | None = None  # None: clip, or raw values for .npy
    depth: int | None = None  # None: the input's
    fmt: str | None = None  # None: from the output's extension
    compress_level: int = 1
    quality: int = 95
    max_pixels: int = reading.DEFAULT_MAX_PIXELS
    fail_fast: bool = False


class Events(Protocol):
    """What a batch tells its caller, in input order."""

    def warn(self, warnings: list[str]) -> None: ...

    def done(self, record: report.ImageReport) -> None: ...

    def failed(self, error: ConvcliError, path: str, target: str | None) -> None: ...

    def progress(self, count: int) -> None: ...


@dataclass
class Loaded:
    path: str
    target: str
    image: reading.Image
    output_shape: tuple[int, ...] = ()
    depth: int = 8

    @property
    def batch_key(self) -> tuple:
        """Images with equal keys can run as one (N, C, H, W) batch."""
        return self.image.pixels.shape[1:], self.image.has_alpha, self.image.depth


_BATCH_PIXELS = 1 << 27  # values per batch: keeps a batch's memory in hand
OUT_OF_MEMORY = "ran out of memory"
SMALLER = "use smaller images, or fewer at once"


def kernel_files(steps: Sequence[pipeline.Step]) -> list[str]:
    """The files the kernels were read from (outputs and --report must never overwrite them)."""
    return list(dict.fromkeys(path for step in steps for path in step.filter.files))


def format_of(target: str, fmt: str | None) -> str:
    """The format ``target`` (maybe holding ``{frame}``) is written in."""
    return output_format_for(batch.frame_path(target, 0), fmt)


def shown(path: str) -> str:
    """How an input is named in messages."""
    return "<stdin>" if path == "-" else path


def size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class _Stop(Exception):
    """--fail-fast: an input failed; nothing more is read or written."""


def run_batch(
    inputs: Sequence[str],
    targets: Sequence[str],
    steps: Sequence[pipeline.Step],
    options: JobOptions,
    events: Events,
    *,
    protected: Sequence[str] = (),
    taken: set[str] | None = None,
) -> int:
    """Run every input to its target; return the worst exit code (0 when all went well).

    ``protected`` are files that no output may overwrite (kernel files); ``taken`` real
    paths that outputs known only once an image is read (``{frame}``) must not take.
    """
    job = _Job(list(steps), options, list(inputs), list(protected), taken or set(), events)
    try:
        group: list[Loaded] = []
        for path, target, outcome in read_ahead(inputs, targets, options.max_pixels):
            if isinstance(outcome, reading.Image):
                events.warn(outcome.warnings)
                item = Loaded(path, target, outcome)
                try:
                    job.plan(item)
                except ConvcliError as err:
                    outcome = err
            if isinstance(outcome, ConvcliError):
                if group:  # keep messages in input order
                    job.run(group)
                    group = []
                job.failed(outcome, path, target)
                events.progress(1)
                continue
            size = sum(i.image.pixels.size for i in group) + outcome.pixels.size
            if group and (item.batch_key != group[0].batch_key or size > _BATCH_PIXELS):
                job.run(group)
                group = []
            group.append(item)
        if group:
            job.run(group)
    except _Stop:
        pass
    return job.worst


def read_ahead(
    inputs: Sequence[str], targets: Sequence[str], max_pixels: int
) -> Iterator[tuple[str, str, reading.Image | ConvcliError]]:
    """Yield (path, target, Image or the ConvcliError reading it), in input order,
    decoding the next input on a background thread while the caller works on this one."""

    def read(path: str) -> reading.Image | ConvcliError:
        try:
            return reading.read_image(path, max_pixels=max_pixels)
        except ConvcliError as err:
            return err
        except MemoryError:
            return ResourceError(f"{shown(path)}: {OUT_OF_MEMORY} reading it; {SMALLER}")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="convcli-read") as reader:

        def start(index: int):
            # Standard input and named pipes are read in the foreground: a blocked read
            # (or a pipe's open, waiting for a writer) in a worker thread would keep
            # Ctrl-C or SIGTERM from ending the process.
            if index >= len(inputs) or is_stream(inputs[index]):
                return None
            return reader.submit(read, inputs[index])

        pending = start(0)
        for index, (path, target) in enumerate(zip(inputs, targets, strict=True)):
            outcome = read(path) if pending is None else pending.result()
            pending = start(index + 1)
            yield path, target, outcome


def frame_paths(target: str, frames: int) -> list[str]:
    if "{frame}" in target:
        return [batch.frame_path(target, n) for n in range(frames)]
    return [target]


class _Job:
    """Planning, filtering and writing groups of same-shaped images; a failure of one
    item is reported for that item only."""

    def __init__(
        self,
        steps: list[pipeline.Step],
        options: JobOptions,
        inputs: list[str],
        protected: list[str],
        taken: set[str],
        events: Events,
    ) -> None:
        self.steps = steps
        self.options = options
        self.inputs = inputs
        self.protected = protected  # kernel files
        self.taken = taken
        self.events = events
        self.worst = 0

    def failed(self, err: ConvcliError, path: str, target: str | None) -> None:
        self.worst = max(self.worst, err.exit_code)
        self.events.failed(err, path, target)
        if self.options.fail_fast:
            raise _Stop

    def plan(self, item: Loaded) -> None:
        """Before filtering: the output shape (from the geometry), the depth, and whether
        the output format can hold them; frame outputs are checked against the inputs."""
        image, options = item.image, self.options
        item.output_shape = pipeline.output_shape(
            image.pixels.shape, self.steps, has_alpha=image.has_alpha
        )
        fmt = format_of(item.target, options.fmt)
        depth = options.depth or (16 if image.depth >= 16 else 8)
        if depth == 16 and image.depth == 32 and not options.depth:
            depth = 16 if fmt in ("PNG", "TIFF") else 8
        item.depth = depth
        frames, channels = item.output_shape[:2]
        paths = frame_paths(item.target, frames)
        if "{frame}" in item.target:
            batch.check_frame_paths(paths, self.inputs, self.taken, kernels=self.protected)
        writing.check_encodable(
            paths[0],
            fmt,
            depth=depth,
            channels=channels,
            frames=1 if "{frame}" in item.target else frames,
            fmt_name=options.fmt,
            error=ParameterError,
        )

    def run(self, group: list[Loaded]) -> None:
        try:
            self._run(group)
        except (ConvcliError, MemoryError) as err:
            if len(group) > 1 and isinstance(err, (MemoryError, ResourceError)):
                for item in group:  # one at a time may fit
                    self.run([item])
                return
            if isinstance(err, MemoryError):
                err = ResourceError(f"{OUT_OF_MEMORY} filtering it; {SMALLER}")
            for item in group:
                self.failed(err, item.path, item.target)
        self.events.progress(len(group))

    def _run(self, group: list[Loaded]) -> None:
        first = group[0].image
        shape = (sum(item.image.pixels.shape[0] for item in group), *first.pixels.shape[1:])
        needed = pipeline.estimate_bytes(shape, self.steps, has_alpha=first.has_alpha)
        available = memory.available_bytes()
        if available is not None and needed > available:
            raise ResourceError(
                f"this job needs about {size_text(needed)} and {size_text(available)} is "
                f"available to this process; {SMALLER}, or a smaller output (--stride)"
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
        names = ", ".join(shown(item.path) for item in group)
        self.events.warn([f"{names}: {warning}" for warning in result.warnings])
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
                error = ResourceError(f"{OUT_OF_MEMORY} writing it; {SMALLER}")
                self.failed(error, item.path, item.target)

    def _write_item(self, item: Loaded, result: pipeline.Result, sl: slice, seconds: float):
        options = self.options
        fmt = format_of(item.target, options.fmt)
        # .npy keeps raw values unless a --range was asked for.
        value_range = options.value_range or (None if fmt == "NPY" else "clip")
        pixels, clipped_low, clipped_high = pipeline.map_range(
            result.values[sl], value_range, bounds=(result.minimum[sl], result.maximum[sl])
        )
        written = self._write(pixels, item.target, item.depth, alpha=result.has_alpha)
        self.events.done(
            report.ImageReport(
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
        )

    def _write(self, pixels: np.ndarray, target: str, depth: int, *, alpha: bool) -> list[str]:
        """Write one image's frames (one file each when the target names {frame});
        return the paths written."""
        options = self.options
        kwargs = {
            "alpha": alpha,
            "depth": depth,
            "fmt": options.fmt,
            "compress_level": options.compress_level,
            "quality": options.quality,
        }
        if "{frame}" in target:
            paths = frame_paths(target, len(pixels))
            # Checked when the image was read; again here, in case the frame count changed.
            batch.check_frame_paths(paths, self.inputs, self.taken, kernels=self.protected)
            for n, path in enumerate(paths):
                self.events.warn(writing.write_image(pixels[n], path, **kwargs))
                self.taken.add(os.path.realpath(path))
            return paths
        self.events.warn(writing.write_image(pixels, target, **kwargs))
        return [target]
