"""The per-file job of ``apply`` and ``upsample``: read one input, plan and check its
output, filter it, write it and describe it, without touching anything shared.

:func:`run_file` returns an :class:`Outcome`: the warnings, then the report record or
the error, and the outputs written but not yet in place (:class:`Staged`). The caller
commits them (fsync, then rename) when it decides: a batch does it in input order
(:func:`convcli.jobs.run.run_batch`), a worker elsewhere right away. Nothing is
printed, and the only shared state it reads is ``taken`` (frame outputs already
written by the run).

Examples
--------
>>> from convcli.jobs.pipeline import Step
>>> from convcli.kernels import load_filter
>>> outcome = run_file("no-such.png", "out.png", [Step(load_filter("box:3"))], JobOptions())
>>> print(outcome.error), outcome.record, outcome.staged
no-such.png: no such file
(None, None, [])
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from convcli.conv import memory
from convcli.errors import ConvcliError, ParameterError, ResourceError, shown_name
from convcli.images import reading, writing
from convcli.images.flatten import Colour
from convcli.images.inputs import shown
from convcli.images.limits import MAX_FRAMES
from convcli.images.metadata import NONE
from convcli.images.output_paths import output_format_for
from convcli.images.outputs import Staged, commit_together
from convcli.jobs import batch, pipeline, report

if TYPE_CHECKING:
    from convcli.images.regions import Regions

OUT_OF_MEMORY = "ran out of memory"
SMALLER = "use smaller images, or fewer at once"


@dataclass(frozen=True)
class JobOptions:
    """How results become files: what ``apply`` and ``upsample`` take besides the steps."""

    value_range: str | None = None  # None: clip, or raw values for .npy
    depth: int | None = None  # None: the input's
    fmt: str | None = None  # None: from the output's extension
    compress_level: int = 1
    quality: int = 95
    max_pixels: int = reading.DEFAULT_MAX_PIXELS
    max_frames: int = MAX_FRAMES  # frames (or pages) of one input
    fail_fast: bool = False
    background: Colour | None = None  # flatten alpha over it (None: white, where needed)
    strip: bool = False  # write no ICC profile or EXIF
    tile: int | None = None  # TIFF tiles and Zarr chunks (None: strips; 512 chunks)


@dataclass
class Outcome:
    """What became of one input: warnings (in order), then a record or an error, and
    its outputs, complete but not yet in place until :meth:`commit`."""

    path: str
    target: str
    warnings: list[str] = field(default_factory=list)
    record: report.ImageReport | None = None
    error: ConvcliError | None = None
    staged: list[Staged] = field(default_factory=list)
    short_of_memory: bool = False  # it may fit with nothing else running

    def sync(self) -> None:
        """fsync every output (on any thread, ahead of :meth:`commit`); if one fails, the
        outputs are discarded and its error becomes the outcome's."""
        try:
            for output in self.staged:
                output.sync()
        except ConvcliError as err:
            self.discard()
            self.error, self.record = err, None

    def commit(self) -> None:
        """Put every output in place (fsync unless :meth:`sync` did, then rename), all
        or none: if one fails, those already placed are undone, the rest discarded, and
        its :class:`~convcli.errors.OutputError` is raised (a multi-frame input's files
        are one result)."""
        staged, self.staged = self.staged, []
        commit_together(staged)

    def discard(self) -> None:
        """Remove the outputs not yet in place."""
        staged, self.staged = self.staged, []
        for output in staged:
            output.discard()


def format_of(target: str, fmt: str | None) -> str:
    """The format ``target`` (maybe holding ``{frame}``) is written in."""
    return output_format_for(batch.frame_path(target, 0), fmt)


def frame_paths(target: str, frames: int) -> list[str]:
    if "{frame}" in target:
        return [batch.frame_path(target, n) for n in range(frames)]
    return [target]


def size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def read_input(path: str, options: JobOptions) -> reading.Image:
    """The decoded input, within the options' limits; running out of memory is a
    :class:`ResourceError`."""
    try:
        return reading.read_image(
            path, max_pixels=options.max_pixels, max_frames=options.max_frames
        )
    except MemoryError:
        raise ResourceError(f"{shown(path)}: {OUT_OF_MEMORY} reading it; {SMALLER}") from None


class Blocks(Protocol):
    """Filtering an image in blocks, never whole (supplied by :mod:`convcli.scale.files`,
    which this layer does not import): for inputs too large to filter in memory, or
    every input when the blocks are asked for (``--chunks N``)."""

    def by_region(self, path: str, steps: Sequence[pipeline.Step]) -> Regions | None:
        """Before anything is decoded: the input read by region, when it runs in blocks."""

    def wanted(self, image: reading.Image, steps: Sequence[pipeline.Step]) -> bool:
        """Once decoded (a format read only whole): whether to filter it in blocks."""

    def run(
        self,
        source: Regions | reading.Image,
        outcome: Outcome,
        steps: Sequence[pipeline.Step],
        options: JobOptions,
        *,
        depth: int,
        paths: list[str],
        started: float,
    ) -> report.ImageReport:
        """Filter and write in blocks (outputs staged in ``outcome``, warnings added);
        the record's ``seconds`` run from ``started``."""


def run_file(
    path: str,
    target: str,
    steps: Sequence[pipeline.Step],
    options: JobOptions,
    *,
    inputs: Sequence[str] = (),
    protected: Sequence[str] = (),
    taken: Collection[str] = frozenset(),
    image: reading.Image | None = None,
    started: float | None = None,
    filtering: Callable[[int], AbstractContextManager] = lambda values: contextlib.nullcontext(),
    blocks: Blocks | None = None,
) -> Outcome:
    """Read ``path`` (unless ``image`` is given), filter it by ``steps`` and write it to
    ``target`` (staged); never raises a :class:`ConvcliError`, which becomes the outcome's.

    ``inputs`` and ``protected`` (kernel files) are what no output may overwrite, and
    ``taken`` the real paths that ``{frame}`` outputs must not take. ``filtering`` wraps
    the filtering and writing of an image of that many values (a batch uses it to
    choose the threads and to run large images one at a time). ``started`` is when
    reading a given ``image`` began (``time.perf_counter()``): the record's ``seconds``
    run from there (or from this call) to the outputs written. ``blocks`` filters the
    images it takes in blocks (read by region, or decoded first) instead of whole.
    """
    started = time.perf_counter() if started is None else started
    outcome = Outcome(path, target)
    stage = "filtering"
    try:
        regions = None
        if blocks is not None and image is None:
            regions = blocks.by_region(path, steps)
        if regions is None and image is None:
            image = read_input(path, options)
        read = regions if regions is not None else image
        shape = read.shape
        outcome.warnings += read.warnings
        depth, paths, output_shape = plan(
            shape, read.depth, read.has_alpha, target, steps, options, inputs, protected, taken
        )
        with filtering(max(math.prod(shape), math.prod(output_shape))):
            if regions is not None or (blocks is not None and blocks.wanted(image, steps)):
                outcome.record = blocks.run(
                    read, outcome, steps, options, depth=depth, paths=paths, started=started
                )
            else:
                check_memory(image, steps)
                start = time.perf_counter()
                result = _filter(image, steps, format_of(target, options.fmt), options, depth)
                filter_seconds = time.perf_counter() - start
                outcome.warnings += [f"{shown(path)}: {warning}" for warning in result.warnings]
                stage = "writing"
                timing = (started, filter_seconds)
                outcome.record = _write(
                    outcome, image, result, paths, depth, steps, options, timing
                )
    except ConvcliError as err:
        outcome.error = err
    except MemoryError:
        outcome.error = ResourceError(f"{OUT_OF_MEMORY} {stage} it; {SMALLER}")
    except BaseException:  # Ctrl-C, a closed pipe: no output of this input stays half done
        outcome.discard()
        raise
    # Every ResourceError is a shortage of memory: alone, the job may fit.
    outcome.short_of_memory = isinstance(outcome.error, ResourceError)
    if outcome.error is not None:
        outcome.discard()
        outcome.record = None
    return outcome


def plan(
    shape: tuple[int, ...],
    in_depth: int,
    has_alpha: bool,
    target: str,
    steps: Sequence[pipeline.Step],
    options: JobOptions,
    inputs: Sequence[str],
    protected: Sequence[str],
    taken: Collection[str],
) -> tuple[int, list[str], tuple[int, ...]]:
    """Before filtering an image of ``shape`` and ``in_depth`` bits: the output depth,
    paths and shape (from the geometry), once the format is known to hold them; frame
    outputs are checked against the inputs."""
    output_shape = pipeline.output_shape(shape, list(steps), has_alpha=has_alpha)
    fmt = format_of(target, options.fmt)
    depth = options.depth or (16 if in_depth >= 16 else 8)
    if depth == 16 and in_depth == 32 and not options.depth:
        depth = 16 if fmt in ("PNG", "TIFF") else 8
    frames, channels = output_shape[:2]
    paths = frame_paths(target, frames)
    if "{frame}" in target:
        batch.check_frame_paths(paths, inputs, taken, kernels=protected)
    writing.check_encodable(
        paths[0],
        fmt,
        depth=depth,
        channels=channels,
        frames=1 if "{frame}" in target else frames,
        fmt_name=options.fmt,
        error=ParameterError,
    )
    return depth, paths, output_shape


def check_memory(image: reading.Image, steps: Sequence[pipeline.Step]) -> None:
    """Refuse a job that cannot fit in the memory this process may still use."""
    needed = pipeline.estimate_bytes(image.shape, list(steps), has_alpha=image.has_alpha)
    available = memory.available_bytes()
    if available is not None and needed > available:
        raise ResourceError(
            f"this job needs about {size_text(needed)} and {size_text(available)} is "
            f"available to this process; {SMALLER}, or a smaller output (--stride)"
        )


def _filter(
    image: reading.Image,
    steps: Sequence[pipeline.Step],
    fmt: str,
    options: JobOptions,
    depth: int,
) -> pipeline.Result:
    """The steps on the image: from its stored integers when it kept them, and straight to
    the output's integers when they are clipped (no float image in memory either side)."""
    if image.stored is None:
        return pipeline.apply_steps(image.pixels, list(steps), has_alpha=image.has_alpha)
    clipped = options.value_range in (None, "clip") and fmt not in writing.RAW_FORMATS
    return pipeline.apply_steps(
        image.stored.values,
        list(steps),
        has_alpha=image.has_alpha,
        divisor=image.stored.top,
        quantize=depth if clipped and image.shape[0] == 1 else None,
    )


def _write(
    outcome: Outcome,
    image: reading.Image,
    result: pipeline.Result,
    paths: list[str],
    depth: int,
    steps: Sequence[pipeline.Step],
    options: JobOptions,
    timing: tuple[float, float],
) -> report.ImageReport:
    """Write the result (one file per frame when the target names ``{frame}``), staged,
    and describe it; clipped values are counted as the floats become the file's
    integers. ``timing``: when reading began, and the seconds the steps took."""
    fmt = format_of(outcome.target, options.fmt)
    # .npy keeps raw values unless a --range was asked for.
    value_range = options.value_range or (None if fmt in writing.RAW_FORMATS else "clip")
    values, shape = result.values, result.shape
    alpha, channels = result.has_alpha, shape[1]
    background = writing.flattening(fmt, channels, alpha=alpha, background=options.background)
    kwargs = {
        "alpha": alpha,
        "depth": depth,
        "fmt": options.fmt,
        "compress_level": options.compress_level,
        "quality": options.quality,
        "background": options.background,
        "metadata": NONE if options.strip else image.metadata,
        "staged": outcome.staged,
        "tile": options.tile,
    }
    if "{frame}" not in outcome.target:
        parts = [(outcome.target, slice(None))]
    else:
        if len(paths) != shape[0]:  # planned from the geometry; it cannot differ
            paths = frame_paths(outcome.target, shape[0])
        parts = [(path, slice(n, n + 1)) for n, path in enumerate(paths)]
    clipped_low = clipped_high = 0
    notes = []
    for path, part in parts:
        if result.integers is not None:  # quantized as it was filtered (one sample)
            pixels = result.integers
            low, high = pixels.below, pixels.above
        elif value_range == "clip" and fmt not in writing.RAW_FORMATS:
            # counts as it clips (and flattens where the format wants it)
            pixels = writing.quantize(values[part], depth, background=background)
            low, high = pixels.below, pixels.above
        else:
            # normalize with alpha stretches the colours by their own bounds (map_range's)
            stretch_alone = alpha and value_range == "normalize"
            bounds = None if stretch_alone else (result.minimum[part], result.maximum[part])
            pixels, low, high = pipeline.map_range(
                values[part], value_range, bounds=bounds, alpha=alpha
            )
        clipped_low, clipped_high = clipped_low + int(low.sum()), clipped_high + int(high.sum())
        notes.append(writing.write_image(pixels, path, **kwargs))
    outcome.warnings += frame_notes(notes, paths, outcome.target)
    return report.ImageReport(
        outcome.path,
        paths[0] if len(paths) == 1 else outcome.target,
        image.shape,
        shape,
        list(zip(result.weight_shapes, result.geometries, strict=True)),
        float(result.minimum.min()),
        float(result.maximum.max()),
        clipped_low,
        clipped_high,
        time.perf_counter() - timing[0],  # every output written
        outputs=tuple(paths),
        filter_seconds=timing[1],
        kernels=tuple(steps),
        value_range=value_range,
        depth=32 if fmt in writing.RAW_FORMATS else depth,
        format=fmt,
        background=background,
        quality=options.quality if fmt in ("JPEG", "WEBP") else None,
    )


def frame_notes(notes: list[list[str]], paths: list[str], target: str) -> list[str]:
    """The writer's warnings about each frame's output: one that every frame gave alike
    (a format without alpha) is said once, of ``target``, not once per file.

    Examples
    --------
    >>> frame_notes([["a-0.jpg: no alpha"], ["a-1.jpg: no alpha", "a-1.jpg: 2 NaN"]],
    ...             ["a-0.jpg", "a-1.jpg"], "a-{frame}.jpg")
    ['a-{frame}.jpg: no alpha', 'a-1.jpg: 2 NaN']
    """
    if len(paths) < 2:
        return [note for frame in notes for note in frame]
    tails = [
        [note[len(shown_name(path)) :] for note in frame]
        for frame, path in zip(notes, paths, strict=True)
    ]
    common = set(tails[0]).intersection(*tails[1:])
    said = [shown_name(target) + tail for tail in tails[0] if tail in common]
    return said + [
        shown_name(path) + tail
        for frame, path in zip(tails, paths, strict=True)
        for tail in frame
        if tail not in common
    ]


def real_paths(outcome: Outcome) -> list[str]:
    """The real paths of an outcome's frame outputs (what later frames must not take)."""
    if outcome.record is None or "{frame}" not in outcome.target:
        return []
    return [os.path.realpath(path) for path in outcome.record.outputs]
