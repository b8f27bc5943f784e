"""Image files through a job in blocks: which inputs go there (``--chunks``), the checks
made before the first block, and the report record, as the per-file job
(:func:`convcli.jobs.one_file.run_file`) asks through its ``blocks`` hook.

- An input read by region (TIFF, Zarr, ``.npy``) runs in blocks when the in-memory job
  would not fit the memory this process may use
  (:func:`convcli.jobs.pipeline.estimate_bytes` against
  :func:`convcli.conv.memory.available_bytes`), or when it has more pixels than
  ``--max-pixels`` (which guards decoders that hold a whole image; a region reader's
  memory is bounded by the block plan instead); always with ``--chunks N``.
- Other formats are decoded whole, as always, and filtered in blocks when the filtering
  would not fit (or with ``--chunks N``).
- Before the first block: the output's size against the free space of its file system,
  and, for a format written whole (PNG, JPEG, ...), against the memory
  (:func:`check_room`).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Sequence

from convcli.conv import memory
from convcli.errors import OutputError, ResourceError, shown_name
from convcli.images import writing
from convcli.images.limits import MAX_FRAMES
from convcli.images.metadata import NONE
from convcli.images.regions import Regions, open_regions
from convcli.jobs import one_file, pipeline, report
from convcli.jobs.one_file import size_text
from convcli.scale import sinks, streaming
from convcli.scale.schedulers import require_dask
from convcli.scale.sources import ArraySource
from convcli.scale.stages import Frame

TILE = sinks.TILE


def fits_in_memory(shape: tuple[int, ...], steps, *, has_alpha: bool) -> bool:
    """Whether the in-memory job on an image of ``shape`` fits the memory available."""
    needed = pipeline.estimate_bytes(shape, list(steps), has_alpha=has_alpha)
    available = memory.available_bytes()
    return available is None or needed <= available


class FileBlocks:
    """The per-file job's ``blocks`` hook (:class:`convcli.jobs.one_file.Blocks`).

    ``scheduler`` runs the blocks (:mod:`convcli.scale.schedulers`); ``chunks`` (h, w)
    puts every image in blocks of that size (None: only those that need it); ``prefer``
    puts every input read by region in blocks (a cluster was asked for); a decoded
    image's blocks run on ``local`` (its pixels are not sent to other processes).
    ``progress(done, total)`` hears of each block. An image that needs blocks without
    Dask installed is refused (a :class:`~convcli.errors.DependencyError`) before it is
    filtered.
    """

    def __init__(
        self,
        scheduler,
        *,
        max_pixels: int,
        max_frames: int = MAX_FRAMES,
        chunks: tuple[int, int] | None = None,
        prefer: bool = False,
        local=None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.scheduler, self.local = scheduler, local or scheduler
        self.max_pixels, self.max_frames, self.chunks = max_pixels, max_frames, chunks
        self.prefer, self.progress = prefer, progress

    def by_region(self, path: str, steps: Sequence[pipeline.Step]) -> Regions | None:
        regions = open_regions(path, max_frames=self.max_frames)
        if regions is None:
            return None
        n, _, height, width = regions.shape
        whole = (
            self.chunks is None
            and not self.prefer
            and n * height * width <= self.max_pixels
            and fits_in_memory(regions.shape, steps, has_alpha=regions.has_alpha)
        )
        if whole:
            return None
        self._need_dask(path)
        return regions

    def wanted(self, image, steps: Sequence[pipeline.Step]) -> bool:
        if self.chunks is None and fits_in_memory(image.shape, steps, has_alpha=image.has_alpha):
            return False
        self._need_dask(image.source)
        return True

    def _need_dask(self, path: str) -> None:
        why = "--chunks" if self.chunks is not None else "too large to filter in memory"
        require_dask(f"{shown_name(path)}: {why}: filtering in blocks")

    def run(
        self,
        source,
        outcome: one_file.Outcome,
        steps: Sequence[pipeline.Step],
        options: one_file.JobOptions,
        *,
        depth: int,
        paths: list[str],
        started: float,
    ) -> report.ImageReport:
        if isinstance(source, Regions):
            read, scheduler = source, self.scheduler
        else:  # a decoded image
            read, scheduler = ArraySource(source.pixels), self.local
        has_alpha, metadata = source.has_alpha, NONE if options.strip else source.metadata
        fmt = one_file.format_of(outcome.target, options.fmt)
        value_range = options.value_range or (None if fmt in sinks.RAW else "clip")
        frames = [(read, paths[0])]
        if "{frame}" in outcome.target:  # one output per frame, each its own job
            frames = [(Frame(read, n), path) for n, path in enumerate(paths)]
        output_shape = pipeline.output_shape(read.shape, list(steps), has_alpha=has_alpha)
        compressed = fmt != "NPY" and not (fmt == "TIFF" and options.compress_level == 0)
        for _, path in frames:
            outcome.warnings += check_room(
                path,
                fmt,
                (output_shape[0] // len(frames), *output_shape[1:]),
                depth,
                compressed=compressed,
            )
        exact = None
        stored = getattr(source, "stored", None)  # a decoded image's integers (not Regions)
        # As in memory: raw formats keep the float values, even clipped.
        if stored is not None and value_range == "clip" and fmt not in writing.RAW_FORMATS:
            exact = pipeline.exact_divisor(
                list(steps), read.shape, has_alpha=has_alpha, top=stored.top, depth=depth
            )
        done, made = [], []
        for frame, path in frames:
            make = self._sink_for(fmt, path, depth, options, metadata, outcome.staged)

            def sink_for(shape, alpha, make=make):
                made.append(make(shape, alpha))
                return made[-1]

            done.append(
                streaming.run_blocks(
                    frame,
                    sink_for,
                    list(steps),
                    has_alpha=has_alpha,
                    value_range=value_range,
                    scheduler=scheduler,
                    chunks=self.chunks,
                    progress=self.progress,
                    exact=exact,
                )
            )
        name = one_file.shown(outcome.path)
        outcome.warnings += [f"{name}: {w}" for w in done[0].built.warnings]
        outcome.warnings += one_file.frame_notes([d.warnings for d in done], paths, outcome.target)
        built = done[0].built
        return report.ImageReport(
            outcome.path,
            paths[0] if len(paths) == 1 else outcome.target,
            tuple(read.shape),
            tuple(output_shape),
            list(zip(built.weight_shapes, built.geometries, strict=True)),
            min(d.minimum for d in done),
            max(d.maximum for d in done),
            sum(d.clipped_low for d in done),
            sum(d.clipped_high for d in done),
            time.perf_counter() - started,  # every output written
            outputs=tuple(paths),
            filter_seconds=sum(d.seconds for d in done),
            kernels=tuple(steps),
            value_range=value_range,
            depth=32 if fmt in sinks.RAW else depth,
            format=fmt,
            background=writing.flattening(
                fmt, output_shape[1], alpha=built.has_alpha, background=options.background
            ),
            quality=options.quality if fmt in ("JPEG", "WEBP") else None,
        )

    def _sink_for(self, fmt: str, target: str, depth: int, options, metadata, staged: list):
        tile = options.tile or TILE
        background = options.background

        def make(shape: tuple[int, ...], alpha: bool) -> sinks.Sink:
            if fmt == "TIFF":
                return sinks.TiffSink(
                    target,
                    shape,
                    depth=depth,
                    tile=tile,
                    compress_level=options.compress_level,
                    alpha=alpha,
                    background=background,
                    metadata=metadata,
                    staged=staged,
                )
            if fmt == "ZARR":  # chunks as the blocks given, else tiles
                chunk = self.chunks or (tile, tile)
                return sinks.ZarrSink(
                    target, shape, chunk=chunk, alpha=alpha, background=background, staged=staged
                )
            if fmt == "NPY" and _regular(target):
                return sinks.NpySink(
                    target, shape, alpha=alpha, background=background, staged=staged
                )
            return sinks.GatherSink(
                target,
                shape,
                alpha=alpha,
                staged=staged,
                depth=depth,
                fmt=options.fmt,
                compress_level=options.compress_level,
                quality=options.quality,
                background=background,
                metadata=metadata,
            )

        return make


def _regular(target: str) -> bool:
    """A path a worker can write into (not standard output, a device or a pipe)."""
    return target != "-" and (not os.path.exists(target) or os.path.isfile(target))


def check_room(
    target: str, fmt: str, shape: tuple[int, ...], depth: int, *, compressed: bool
) -> list[str]:
    """Before any block runs: refuse an uncompressed output (``.npy``, TIFF at
    ``--compress-level 0``) larger than the free space of its file system, and warn when
    a compressed one could be (its size uncompressed is the most it takes); refuse an
    output written whole (PNG, JPEG, ...: not TIFF, Zarr or a ``.npy`` file) larger than
    the memory this process may use. Returns the warnings."""
    values = math.prod(shape)
    itemsize = 4 if fmt in sinks.RAW else (2 if depth == 16 else 1)
    size = values * itemsize
    warnings = []
    if _regular(target):
        directory = os.path.dirname(os.path.abspath(target))
        free = shutil.disk_usage(directory).free
        if size > free and not compressed:
            raise OutputError(
                f"{shown_name(target)}: the output takes {size_text(size)} and its file system has "
                f"{size_text(free)} free; free some space or write it elsewhere"
            )
        if size > free:
            warnings.append(
                f"{shown_name(target)}: "
                f"the output takes up to {size_text(size)} uncompressed and its file "
                f"system has {size_text(free)} free; it fits only if it compresses that well"
            )
    whole = fmt not in ("TIFF", "ZARR") and not (fmt == "NPY" and _regular(target))
    available = memory.available_bytes()
    needed = values * (4 + itemsize)  # the gathered floats, and the encoder's integers
    if whole and available is not None and needed > available:
        raise ResourceError(
            f"this job needs about {size_text(needed)} and {size_text(available)} is available "
            f"to this process, even filtered in blocks: {fmt} is written whole; write a .tif, "
            f".zarr or .npy, which convcli writes a block at a time"
        )
    return warnings
