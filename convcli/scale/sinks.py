"""Where a blocked job's output goes, a block at a time, never whole in memory.

- TIFF (:class:`TiffSink`): tiled (BigTIFF past 4 GiB), written band by band as the
  blocks arrive in row order (:func:`convcli.images.tiff.write_tiled`); the blocks come
  back as 8- or 16-bit integers, a band is the only thing held.
- ``.npy`` (:class:`NpySink`) and Zarr (:class:`ZarrSink`): every block is written where
  it was computed, by the worker (:class:`NpyPart`, :class:`ZarrPart`: small, picklable,
  open the file by path), into a temporary file or store; only its statistics come back.
- Anything else (PNG, JPEG, a pipe, ...) (:class:`GatherSink`): the pixels gathered into
  one array and written by :func:`convcli.images.writing.write_image`; only for outputs
  that fit in memory (:func:`convcli.scale.files.check_room` checks before starting).

Every output appears complete or not at all: it is written under a temporary name beside
its target (:func:`convcli.images.outputs.staged_output`) and, once every block is in,
renamed into place, or with ``staged`` (a list) left complete there for the caller to
commit (a batch puts outputs in place in input order). A failure or Ctrl-C removes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from convcli.images import outputs, tiff, writing, zarr_arrays
from convcli.images.flatten import Colour
from convcli.images.metadata import NONE, Metadata, for_output

RAW = writing.RAW_FORMATS  # formats that hold the float values themselves
TILE = 512


class Sink:
    """Takes ``(block, result)`` pairs in row order (see :mod:`convcli.scale.streaming`)."""

    part = None  # what a worker writes its block with (None: the result carries it back)
    payload = "integers"  # what a block's result carries: "integers", "floats" or None
    depth: int | None = None
    background: Colour | None = None  # what the blocks flatten alpha over, if anything

    def __init__(self, target: str, staged: list[outputs.Staged] | None) -> None:
        self.target, self.staged, self.notes = target, staged, []
        self.output: outputs.Staged | None = None  # the temporary, once there is one

    def write(self, results: Iterable[tuple]) -> None:
        """Take every block, then put the output in place (or stage it)."""
        raise NotImplementedError

    def _place(self) -> None:
        output, self.output = self.output, None
        if self.staged is None:
            output.commit()
        else:
            self.staged.append(output)

    def discard(self) -> None:
        if self.output is not None:
            self.output.discard()


class TiffSink(Sink):
    """A tiled TIFF written band by band, page after page; alpha flattened over
    ``background`` when one was asked for, the input's ICC profile kept when it fits."""

    def __init__(
        self,
        target: str,
        shape,
        *,
        depth: int,
        tile: int,
        compress_level: int,
        alpha: bool,
        background: Colour | None = None,
        metadata: Metadata = NONE,
        staged: list | None = None,
    ) -> None:
        super().__init__(target, staged)
        self.depth, self.tile, self.compress_level = depth, tile, compress_level
        n, channels, height, width = shape
        self.background = writing.flattening("TIFF", channels, alpha=alpha, background=background)
        self.notes += writing.channel_notes(
            target, "TIFF", channels, alpha=alpha, flattened=self.background, asked=background
        )
        kept = channels - (self.background is not None)
        self.shape = (n, kept, height, width)
        colours = writing.COLOURS.get(kept, 0)
        found, notes = for_output(
            metadata, target, "TIFF", colours=colours, width=width, height=height
        )
        self.icc_profile = found.icc_profile
        self.notes += notes

    def write(self, results: Iterable[tuple]) -> None:
        n, channels, height, width = self.shape
        with outputs.atomic_output(self.target, staged=self.staged) as stream:
            tiff.write_tiled(
                stream,
                _bands(results, width),
                shape=(height, width, channels),
                dtype=np.uint16 if self.depth == 16 else np.uint8,
                tile=(self.tile, self.tile),
                compress_level=self.compress_level,
                icc_profile=self.icc_profile,
                pages=n,
            )


def _bands(results: Iterable[tuple], width: int) -> Iterator[np.ndarray]:
    """Full-width (rows, W, C) bands from blocks in row order (one sample each)."""
    held: list[np.ndarray] = []
    covered = 0
    for block, result in results:
        held.append(result.payload[0])  # (h, w, C) of the block's one sample
        covered += block.cols[1] - block.cols[0]
        if covered == width:
            yield held[0] if len(held) == 1 else np.concatenate(held, axis=1)
            held, covered = [], 0


class GatherSink(Sink):
    """The whole output in memory (mapped floats), then written by ``write_image``
    (which flattens alpha and keeps the metadata as it does for any image)."""

    payload = "floats"

    def __init__(
        self, target: str, shape, *, alpha: bool, staged: list | None = None, **write_options
    ) -> None:
        super().__init__(target, staged)
        self.alpha, self.options = alpha, write_options
        self.pixels = np.empty(shape, np.float32)

    def write(self, results: Iterable[tuple]) -> None:
        for block, result in results:
            (s0, s1), (r0, r1), (c0, c1) = block.samples, block.rows, block.cols
            self.pixels[s0:s1, :, r0:r1, c0:c1] = result.payload
        self.notes += writing.write_image(
            self.pixels, self.target, alpha=self.alpha, staged=self.staged, **self.options
        )


class NpyPart:
    """A worker's writes into a ``.npy`` file: each block through a mapping of the rows
    it spans only, per sample and channel."""

    def __init__(self, path: str, shape, offset: int) -> None:
        self.path, self.shape, self.offset = path, tuple(shape), offset

    def write(self, values: np.ndarray, block) -> None:
        _, channels, height, width = self.shape
        (s0, _), (r0, r1), (c0, c1) = block.samples, block.rows, block.cols
        for i, sample in enumerate(values):
            for c, plane in enumerate(sample):
                start = (((s0 + i) * channels + c) * height + r0) * width * 4
                mapped = np.memmap(
                    self.path,
                    np.float32,
                    "r+",
                    offset=self.offset + start,
                    shape=(r1 - r0, width),
                )
                mapped[:, c0:c1] = plane
                mapped.flush()
                del mapped


def _raw_shape(sink: Sink, fmt: str, shape, alpha: bool, background) -> tuple[int, ...]:
    """The stored shape of raw values: alpha flattened over ``background`` if asked."""
    sink.background = writing.flattening(fmt, shape[1], alpha=alpha, background=background)
    return (shape[0], shape[1] - (sink.background is not None), *shape[2:])


class NpySink(Sink):
    """A float32 ``.npy`` (raw values unless --range), written in place by the workers."""

    payload = None

    def __init__(
        self, target: str, shape, *, alpha: bool = False, background=None, staged=None
    ) -> None:
        super().__init__(target, staged)
        shape = _raw_shape(self, "NPY", shape, alpha, background)
        self.output = outputs.staged_output(target)
        temporary = str(self.output.temporary)
        try:
            header = np.lib.format.open_memmap(
                temporary, "w+", np.float32, zarr_arrays.stored_shape(shape)
            )
            offset = header.offset
            del header
        except BaseException:
            self.discard()
            raise
        self.part = NpyPart(temporary, shape, offset)

    def write(self, results: Iterable[tuple]) -> None:
        for _ in results:
            pass
        self._place()


class ZarrPart:
    """A worker's writes into a Zarr store made by :func:`zarr_arrays.create`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, values: np.ndarray, block) -> None:
        zarr_arrays.write_region(
            self.path, values, slice(*block.samples), slice(*block.rows), slice(*block.cols)
        )


class ZarrSink(Sink):
    """A Zarr v3 store (float32, chunks of ``chunk`` (h, w) pixels), written in place by
    the workers under a temporary name: each block is whole chunks (the blocks are cut
    on the chunks), so no two workers write one chunk."""

    payload = None

    def __init__(
        self,
        target: str,
        shape,
        *,
        chunk: tuple[int, int],
        alpha=False,
        background=None,
        staged=None,
    ) -> None:
        super().__init__(target, staged)
        shape = _raw_shape(self, "ZARR", shape, alpha, background)
        self.chunk = chunk
        self.output = zarr_arrays.staged_store(target)
        try:
            zarr_arrays.create(str(self.output.temporary), shape, chunk=chunk)
        except BaseException:
            self.discard()
            raise
        self.part = ZarrPart(str(self.output.temporary))

    def write(self, results: Iterable[tuple]) -> None:
        for _ in results:
            pass
        self._place()
