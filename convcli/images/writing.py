"""Writing (N, C, H, W) float32 pixels as image files and ``.npy``.

Pixels in [0, 1] become 8- or 16-bit integers (:mod:`convcli.images.quantizing`, whose
names are reached here too), clipped and rounded; :func:`check_encodable` says what a
format cannot hold (16 bits in JPEG, more than 4 channels outside TIFF, ...) and is
shared by :func:`write_image` and the command line, which asks before filtering. Every
file is written through :func:`convcli.images.outputs.atomic_output`: complete or not at
all. Reading is in :mod:`convcli.images.reading`, which re-exports these names.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from convcli.errors import ConvcliError, OutputError, shown_name
from convcli.images import fast_codecs, npy, pillow, png, pnm, tiff
from convcli.images.flatten import WHITE, Colour, flatten
from convcli.images.metadata import EXIF_HEADER, NONE, Metadata, for_output
from convcli.images.output_paths import output_format_for
from convcli.images.outputs import Staged, atomic_output
from convcli.images.quantizing import (  # noqa: F401
    Integers,
    quantize,
    quantize_integer_tile,
    quantize_tile,
    to_integers,
)

TIFF_TILE = 512  # the tiles of a TIFF written in blocks, or past BIG_TIFF_BYTES
BIG_TIFF_BYTES = 2**32
RAW_FORMATS = ("NPY", "ZARR")  # the float values themselves, any shape
_ALPHA_FORMATS = {"PNG", "TIFF", "WEBP", "NPY", "ZARR"}
_DEPTH16_FORMATS = {"PNG", "TIFF", "PPM", "NPY"}
COLOURS = {1: 1, 2: 1, 3: 3, 4: 3}  # colour channels (alpha aside) of what is stored


def flattening(fmt: str, channels: int, *, alpha: bool, background: Colour | None) -> Colour | None:
    """The colour a result of ``channels`` is flattened over when written as ``fmt``, or
    None when its last channel is written as it is: with ``alpha`` (2 or 4 channels that
    are gray or colour + alpha), over ``background`` if one was asked for in any format,
    else over white in a format without alpha (JPEG, BMP, PNM).

    Examples
    --------
    >>> flattening("JPEG", 4, alpha=True, background=None), flattening("PNG", 4, alpha=True,
    ...                                                              background=None)
    ((1.0, 1.0, 1.0), None)
    """
    if not alpha or channels not in (2, 4):
        return None
    if background is not None:
        return background
    return None if fmt in _ALPHA_FORMATS else WHITE


def write_image(
    pixels: np.ndarray | Integers,
    path: str,
    *,
    depth: int = 8,
    fmt: str | None = None,
    compress_level: int = 1,
    quality: int = 95,
    alpha: bool = True,
    background: Colour | None = None,
    metadata: Metadata = NONE,
    staged: list[Staged] | None = None,
    tile: int | None = None,
) -> list[str]:
    """Write (N, C, H, W) or (C, H, W) pixels in [0, 1], or :class:`Integers` already
    made by :func:`quantize`; return warnings for the user.

    ``tile``: TIFF in ``tile`` x ``tile`` tiles (otherwise strips, and tiles of
    :data:`TIFF_TILE` past 4 GiB, a BigTIFF then), Zarr in chunks of that side.

    With ``staged``, a regular file is left complete but not yet in place: see
    :func:`convcli.images.outputs.atomic_output`.

    Alpha (the last of 2 or 4 channels) is flattened over ``background`` when one is
    given, in every format; without one, a format that holds no alpha (JPEG, BMP, PNM)
    flattens it over white, with a warning (:func:`flattening`). ``alpha=False`` says
    that 2 or 4 channels are not gray+alpha or RGBA (feature maps of a 4-D weight):
    written to an image format, the last one becomes transparency, or is dropped, and a
    warning says so. NaN values become 0 in integer formats, with a warning that counts
    them. ``metadata`` (the input's ICC profile and EXIF) is written where the format
    and the result's colours take it (:func:`convcli.images.metadata.for_output`).

    ``.npy`` keeps the raw floats (no scaling, no clipping; N = 1 is written as
    (C, H, W)). Several samples (frames) need TIFF, and so do channel counts
    other than 1 to 4 (or ``.npy``). ``depth`` 16 goes to PNG, TIFF and PNM.
    ``compress_level`` is deflate's level for PNG and TIFF (0: TIFF uncompressed);
    1, the default, wrote a 2048x2048 photograph as PNG twice as fast as level 6
    (0.23 s against 0.46 s) for a file 16 % larger.

    Notes
    -----
    PNM is chosen by channels: gray is P5 (also in a ``.ppm``, which netpbm's
    PPM readers accept), RGB is P6; RGB to a ``.pgm`` is an error, since PGM
    readers refuse P6. TIFF, PNG and PNM are written by convcli itself
    (:mod:`convcli.images.tiff`, :mod:`convcli.images.png`, :mod:`convcli.images.pnm`),
    JPEG, WebP and BMP by Pillow.

    Examples
    --------
    >>> write_image(np.zeros((3, 4, 4), np.float32), "/tmp/black.png")  # doctest: +SKIP
    []
    """
    fmt_name = fmt
    fmt = output_format_for(path, fmt)
    integers = pixels if isinstance(pixels, Integers) else None
    if integers is not None and integers.background is not None:  # flattened already
        n, channels = integers.values.shape[0], integers.values.shape[-1] + 1
        over = integers.background
    else:
        if integers is not None:
            n, channels = integers.values.shape[0], integers.values.shape[-1]
        else:
            pixels = np.asarray(pixels)
            pixels = pixels[None] if pixels.ndim == 3 else pixels
            n, channels = pixels.shape[:2]
        over = flattening(fmt, channels, alpha=alpha, background=background)
        if integers is not None and over is not None:  # made unflattened: flatten its values
            top = np.float32(np.iinfo(integers.values.dtype).max)
            pixels, integers = integers.values.transpose(0, 3, 1, 2) / top, None
    if fmt in RAW_FORMATS and integers is None:
        if over is not None:
            pixels = flatten(pixels, over)
        if fmt == "ZARR":
            from convcli.images import zarr_arrays

            zarr_arrays.write_zarr(pixels, path, chunk=tile or zarr_arrays.CHUNK, staged=staged)
            return []
        with atomic_output(path, staged=staged) as stream:
            npy.write_npy(pixels[0] if len(pixels) == 1 else pixels, stream)
        return []
    check_encodable(path, fmt, depth=depth, channels=channels, frames=n, fmt_name=fmt_name)
    notes = channel_notes(path, fmt, channels, alpha=alpha, flattened=over, asked=background)
    dropped = over is None and not alpha and channels in (2, 4) and fmt not in _ALPHA_FORMATS
    keep = channels - 1 if over is not None or dropped else channels
    if integers is None:
        integers = quantize(
            pixels if over is not None else pixels[:, :keep], depth, background=over
        )
    notes += nan_notes(path, int(integers.nan[:keep].sum()))
    stored = integers.values
    planes_last = stored if stored.shape[-1] == keep else stored[..., :keep].copy()
    height, width = planes_last.shape[1:3]
    kept, metadata_notes = for_output(
        metadata, path, fmt, colours=COLOURS.get(keep, 0), width=width, height=height
    )
    notes += metadata_notes
    writers = {
        "PNG": lambda out: png.write_png(
            planes_last[0],
            out,
            compress_level=compress_level,
            icc_profile=kept.icc_profile,
            exif=kept.exif,
        ),
        "TIFF": lambda out: tiff.write_tiff(
            planes_last,
            out,
            compress_level=compress_level,
            icc_profile=kept.icc_profile,
            tile=_tiff_tile(planes_last, tile),
        ),
        "PPM": lambda out: pnm.write_pnm(planes_last[0], out),  # P5 even in a .ppm: see Notes
    }
    if fmt in writers:
        with atomic_output(path, staged=staged) as stream:
            writers[fmt](stream)
        return notes
    # Encoded in memory first: a failed encode must not leave a partial file.
    encoded = _encode_in_memory(planes_last[0], fmt, quality, kept)
    with atomic_output(path, staged=staged) as stream:
        stream.write(encoded)
    return notes


def _tiff_tile(values: np.ndarray, tile: int | None) -> tuple[int, int] | None:
    """The TIFF tiles to write ``values`` in: ``tile``, or past 4 GiB :data:`TIFF_TILE`."""
    if tile is None and values.nbytes > BIG_TIFF_BYTES:
        tile = TIFF_TILE
    return None if tile is None else (tile, tile)


def nan_notes(path: str, count: int) -> list[str]:
    """What to say about ``count`` NaN values written as 0."""
    if not count:
        return []
    were = "value was" if count == 1 else "values were"
    return [f"{shown_name(path)}: {count} {were} NaN; written as 0"]


def channel_notes(
    path: str,
    fmt: str,
    channels: int,
    *,
    alpha: bool,
    flattened: Colour | None,
    asked: Colour | None,
) -> list[str]:
    """What to say about the last of 2 or 4 channels: flattened over white for want of
    alpha in ``fmt`` (the user named no background: see :func:`flattening`); dropped
    (``alpha=False``: not alpha) from a format without alpha; or stored as transparency
    in one with it."""
    if channels not in (2, 4):
        return []
    if flattened is not None:
        if asked is not None:
            return []
        return [
            f"{shown_name(path)}: "
            f"{fmt} has no alpha channel; flattened over white (--background to choose)"
        ]
    if alpha:
        return []
    if fmt not in _ALPHA_FORMATS:
        return [
            f"{shown_name(path)}: "
            f"{fmt} holds {channels - 1} of the result's {channels} channels; the "
            f"last one is dropped (write .npy or .tif to keep every channel)"
        ]
    kind = "gray+alpha" if channels == 2 else "RGBA"
    return [
        f"{shown_name(path)}: "
        f"the result has {channels} channels, which {fmt} stores as {kind}: channel "
        f"{channels} becomes transparency; write .npy to keep {channels} plain channels"
    ]


def _encode_in_memory(values: np.ndarray, fmt: str, quality: int, metadata: Metadata):
    """(H, W, C) uint8 as a file of ``fmt`` (JPEG, WebP, BMP) by Pillow, with the ICC
    profile and EXIF of ``metadata``; JPEG through :mod:`convcli.images.fast_codecs`
    when it can (the same bytes, faster)."""
    plain = values[..., 0] if values.shape[-1] == 1 else values
    if fmt == "JPEG":
        encoded = fast_codecs.encode_jpeg(plain, quality=quality, metadata=metadata)
        if encoded is not None:
            return encoded
    options = {"JPEG": {"quality": quality}, "WEBP": {"quality": quality}}.get(fmt, {})
    if metadata.icc_profile is not None:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None:  # Pillow writes JPEG's APP1 as given, header included
        options["exif"] = EXIF_HEADER + metadata.exif
    stream = io.BytesIO()
    pillow.image_module().fromarray(plain).save(stream, format=fmt, **options)
    return stream.getbuffer()


def check_encodable(
    path: str,
    fmt: str,
    *,
    depth: int,
    channels: int,
    frames: int = 1,
    fmt_name: str | None = None,
    error: type[ConvcliError] = OutputError,
) -> None:
    """Refuse what format ``fmt`` (as from :func:`output_format_for`) cannot hold:
    16 bits in an 8-bit format, more than 4 channels outside TIFF, several frames
    outside TIFF, RGB in a PGM. :func:`write_image` calls it; the command line
    calls it before filtering (``error=ParameterError``), from the output shape.

    Examples
    --------
    >>> check_encodable("x.jpg", "JPEG", depth=16, channels=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.OutputError: x.jpg: JPEG holds 8 bits per channel; ...
    """
    if fmt in RAW_FORMATS:
        return
    if depth not in (8, 16):
        raise error(f"{shown_name(path)}: depth {depth} is not 8 or 16")
    if depth == 16 and fmt not in _DEPTH16_FORMATS:
        raise error(
            f"{shown_name(path)}: "
            f"{fmt} holds 8 bits per channel; write 16-bit data as .png, .tif or "
            f".ppm/.pgm (or pass --depth 8)"
        )
    if channels not in (1, 2, 3, 4) and fmt != "TIFF":
        raise error(
            f"{shown_name(path)}: "
            f"the result has {channels} channels; images hold 1 to 4, so write it as "
            f".tif (any number of channels) or .npy (raw floats)"
        )
    if frames > 1 and fmt != "TIFF":
        raise error(
            f"{shown_name(path)}: "
            f"{frames} frames need a multi-page .tif, or a {{frame}} template in the name"
        )
    if channels in (2, 4) and fmt not in _ALPHA_FORMATS:
        channels -= 1  # write_image drops alpha (with a warning)
    if fmt == "PPM" and channels == 3 and _pnm_name(path, fmt_name) == "pgm":
        # P6 data in a .pgm is what Pillow would write; PGM readers refuse it.
        raise error(
            f"{shown_name(path)}: "
            f"PGM holds gray and the result is RGB; write .ppm or .pnm, or make one "
            f"channel first (e.g. -k filters/luma.toml)"
        )


def _pnm_name(path: str, fmt: str | None) -> str:
    """pgm, ppm or pnm: which the user asked for, by --format or the extension."""
    return (fmt or Path(path).suffix).lower().lstrip(".")
