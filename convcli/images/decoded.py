"""A decoded image: float pixels for the filters, made from the decoder's integers only
when asked, and what writing it back needs. :mod:`convcli.images.reading` makes them
(and re-exports these names)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcli.images.metadata import NONE, Metadata


@dataclass(frozen=True)
class Stored:
    """An image's values as decoded: integers (N, C, H, W), a view of the decoder's
    interleaved (N, H, W, C) array, read as ``float32(values) / top`` (255, 65535, a
    PPM's maxval, or a TIFF's range: 4095 for 12 bits, 1 for 1 bit).

    The filters read them a tile at a time (:func:`convcli.conv.operations.conv2d_into`
    with ``divisor=top``): a float copy of a whole 8-bit image is four times its size,
    and making it cost more than a 3x3 convolution of it.
    """

    values: np.ndarray
    top: int

    @classmethod
    def of(cls, array: np.ndarray, top: int) -> Stored:
        """(H, W[, C]) integers as stored values: a (1, C, H, W) view of them.

        Examples
        --------
        >>> Stored.of(np.zeros((4, 5, 3), np.uint8), 255).values.shape
        (1, 3, 4, 5)
        """
        if array.ndim == 2:
            array = array[..., None]
        return cls(array.transpose(2, 0, 1)[None], top)

    def floats(self) -> np.ndarray:
        """The (1, C, H, W) float32 pixels."""
        return scaled_planes(self.values[0].transpose(1, 2, 0), self.top)[None]


class Image:
    """A decoded image: pixels (N, C, H, W) float32 and what writing it back needs.

    An 8- or 16-bit single-frame image keeps its decoded integers (``stored``) and makes
    the float ``pixels`` only when they are first asked for; ``shape`` never makes them.
    """

    def __init__(
        self,
        pixels: np.ndarray | None,
        depth: int,  # 8, 16, or 32 for float data
        has_alpha: bool,
        source: str,
        format: str | None,  # noqa: A002 - the file's format, as Pillow names it
        warnings: list[str] | None = None,
        metadata: Metadata = NONE,  # its ICC profile and EXIF
        *,
        stored: Stored | None = None,
    ) -> None:
        if pixels is None and stored is None:
            raise ValueError("an Image needs pixels or stored values")
        self._pixels, self.stored = pixels, stored
        self.depth, self.has_alpha, self.source, self.format = depth, has_alpha, source, format
        self.warnings = [] if warnings is None else warnings
        self.metadata = metadata

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self.stored.floats()  # type: ignore[union-attr]
        return self._pixels

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, C, H, W)."""
        whole = self._pixels if self._pixels is not None else self.stored.values  # type: ignore[union-attr]
        return tuple(whole.shape)  # type: ignore[return-value]


def scaled_planes(array: np.ndarray, top: int) -> np.ndarray:
    """(H, W[, C]) integers -> (C, H, W) float32 / top, a channel of a band of rows at a
    time, the bands spread over the tile threads.

    Converting the interleaved array in one go is several times slower (a strided
    read through a temporary); per-channel divisions into one result are not.
    Floats (``top`` 1) are copied as they are: dividing a signalling NaN warns.
    """
    from convcli.conv.engines.tiles import run_parallel

    if array.ndim == 2:
        array = array[..., None]
    out = np.empty((array.shape[2], *array.shape[:2]), np.float32)
    rows = max(1, (1 << 18) // max(1, array.shape[1]))

    def scale(r0: int) -> None:
        for c in range(array.shape[2]):
            band, into = array[r0 : r0 + rows, :, c], out[c, r0 : r0 + rows]
            if top == 1:
                into[...] = band
            else:
                np.divide(band, np.float32(top), out=into, dtype=np.float32)

    run_parallel(scale, range(0, array.shape[0], rows))
    return out
