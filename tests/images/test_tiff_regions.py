"""TIFF by region: every region equals that part of read_image's pixels, whatever the
layout; damaged files fail as they would read whole; what cannot be read by region says so."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import tifffile

from convcli.errors import ImageError, ParameterError
from convcli.images.reading import read_image
from convcli.images.regions import open_regions
from convcli.images.tiff_regions import TiffRegions

RNG = np.random.default_rng(7)
U8 = RNG.integers(0, 256, (90, 130, 3), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (90, 130), dtype=np.uint16)
F32 = RNG.random((90, 130), dtype=np.float32)

LAYOUTS = {
    "float tiles deflated": (F32, dict(tile=(32, 48), compression="zlib")),
    "8-bit strips": (U8[..., 0], dict(rowsperstrip=7)),
    "RGB 16-bit tiles LZW predictor": (
        RNG.integers(0, 65536, (90, 130, 3), dtype=np.uint16),
        dict(tile=(16, 16), compression="lzw", predictor=True),
    ),
    "RGBA planar tiles": (
        RNG.integers(0, 256, (4, 90, 130), dtype=np.uint8),
        dict(photometric="rgb", planarconfig="separate", extrasamples=[2], tile=(32, 32)),
    ),
    "uncompressed one strip": (U16, dict(rowsperstrip=90)),
    "uncompressed planar": (
        RNG.integers(0, 65536, (3, 90, 130), dtype=np.uint16),
        dict(photometric="rgb", planarconfig="separate", rowsperstrip=90),
    ),
    "big-endian float": (F32, dict(byteorder=">", rowsperstrip=90)),
    "bilevel": (RNG.integers(0, 2, (90, 130)).astype(bool), {}),
    "JPEG tiles": (U8, dict(tile=(32, 32), compression="jpeg", photometric="rgb")),
    "white is zero": (U8[..., 0], dict(photometric="miniswhite", tile=(32, 32))),
    "three pages": (
        RNG.integers(0, 256, (3, 90, 130), dtype=np.uint8),
        dict(photometric="minisblack", tile=(32, 32)),
    ),
    "palette": (
        U8[..., 0],
        dict(photometric="palette", colormap=RNG.integers(0, 65536, (3, 256), dtype=np.uint16)),
    ),
    "BigTIFF": (U16, dict(tile=(32, 32), bigtiff=True, compression="zlib")),
    **{
        f"orientation {o}": (U8, dict(tile=(32, 32), extratags=[(274, 3, 1, o, True)]))
        for o in range(1, 9)
    },
}

REGIONS = [
    ((0, None), (0, None)),  # whole
    ((5, 77), (33, 85)),  # across segments
    ((-10, None), (-3, None)),  # the bottom-right edge (partial tiles)
    ((32, 64), (64, 65)),  # one column on a tile boundary
]


def _bounds(span, size):
    start, stop = span
    start = start % size if start < 0 else start
    return slice(start, size if stop is None else stop)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_region_is_that_part_of_read_image(tmp_path, layout):
    data, options = LAYOUTS[layout]
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, data, **options)
    whole = read_image(str(path))
    regions = open_regions(str(path))
    assert isinstance(regions, TiffRegions)
    assert regions.shape == whole.pixels.shape
    assert (regions.depth, regions.has_alpha) == (whole.depth, whole.has_alpha)
    n, c, h, w = regions.shape
    for rows, cols in REGIONS:
        rows, cols = _bounds(rows, h), _bounds(cols, w)
        got = regions.read_region(slice(0, n), slice(0, c), rows, cols)
        np.testing.assert_array_equal(got, whole.pixels[:, :, rows, cols])
    # one channel, one frame
    got = regions.read_region(slice(n - 1, n), slice(c - 1, c), slice(1, 4), slice(2, 9))
    np.testing.assert_array_equal(got, whole.pixels[n - 1 :, c - 1 :, 1:4, 2:9])


def test_a_pyramid_is_read_at_level_zero(tmp_path):
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(U8, tile=(32, 32), subifds=1, photometric="rgb")
        tif.write(U8[::2, ::2], tile=(32, 32), subfiletype=1, photometric="rgb")
    regions = open_regions(str(path))
    assert regions.shape == (1, 3, 90, 130)
    got = regions.read_region(slice(0, 1), slice(0, 3), slice(0, 90), slice(0, 130))
    np.testing.assert_array_equal(got, read_image(str(path)).pixels)
    np.testing.assert_array_equal(got[0].transpose(1, 2, 0), U8 / np.float32(255))


def test_a_region_source_pickles_as_a_path_and_reopens(tmp_path):
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((4096, 4096), np.uint8), tile=(64, 64), compression="zlib")
    regions = open_regions(str(path))
    regions.read_region(slice(0, 1), slice(0, 1), slice(0, 2), slice(0, 2))  # opened here
    blob = pickle.dumps(regions)
    assert len(blob) < 2000  # no offsets, no open file, no pixels
    again = pickle.loads(blob)
    assert again.read_region(slice(0, 1), slice(0, 1), slice(0, 2), slice(0, 2)).shape == (
        1,
        1,
        2,
        2,
    )


def test_a_file_changed_since_it_was_opened_is_refused(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, U8, tile=(32, 32))
    regions = pickle.loads(pickle.dumps(open_regions(str(path))))
    tifffile.imwrite(path, U8[:50], tile=(32, 32))
    with pytest.raises(ImageError, match="changed while it was being read"):
        regions.read_region(slice(0, 1), slice(0, 3), slice(0, 2), slice(0, 2))


def test_missing_tiles_are_refused_before_any_region(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, U16, tile=(32, 32))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tag = tif.pages[0].tags["TileOffsets"]
        offsets = list(tag.value)
        offsets[3] = 0
        tag.overwrite(offsets)
    with pytest.raises(ImageError, match="image data for 14 of its 15 tiles"):
        open_regions(str(path))


def test_a_truncated_file_fails_before_any_region_is_read(tmp_path):
    # Its last tile runs past the end of the file: no block is computed from the rest.
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, F32, tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        end = max(int(o) for o in tif.pages[0].dataoffsets)
    with open(path, "r+b") as stream:
        stream.truncate(end + 5)
    with pytest.raises(ImageError, match=r"damaged TIFF: tile \d+ of page 0 runs .* past the end"):
        TiffRegions(str(path)).read_region(slice(0, 1), slice(0, 1), slice(0, 8), slice(0, 8))


def test_a_jpeg_tile_claiming_more_pixels_than_its_room_is_refused_before_decoding(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, U8, tile=(32, 32), compression="jpeg", photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        offset = int(tif.pages[0].dataoffsets[0])
    with open(path, "r+b") as stream:
        data = bytearray(stream.read())
        sof = data.index(b"\xff\xc0", offset)
        data[sof + 5 : sof + 9] = (30000).to_bytes(2, "big") + (30000).to_bytes(2, "big")
        stream.seek(0)
        stream.write(data)
    regions = TiffRegions(str(path))
    with pytest.raises(ImageError, match="holds a 30000x30000 image"):
        regions.read_region(slice(0, 1), slice(0, 3), slice(0, 4), slice(0, 4))


def test_what_decodes_only_whole_is_not_read_by_region(tmp_path, monkeypatch):
    volume = tmp_path / "volume.tif"
    tifffile.imwrite(
        volume,
        np.zeros((4, 32, 32), np.uint8),
        photometric="minisblack",
        volumetric=True,
        tile=(16, 16),
    )
    assert open_regions(str(volume)) is None
    strip = tmp_path / "strip.tif"
    tifffile.imwrite(strip, U16, rowsperstrip=90, compression="zlib")
    monkeypatch.setattr("convcli.images.tiff_regions.SEGMENT_BYTES", 10_000)
    assert open_regions(str(strip)) is None  # one deflated strip of 23 kB decoded
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, U16, rowsperstrip=90)  # uncompressed: rows read as stored
    assert open_regions(str(plain)) is not None


def test_a_damaged_header_is_the_same_error_as_reading_whole(tmp_path):
    path = tmp_path / "a.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 100)
    with pytest.raises(ImageError) as whole:
        read_image(str(path))
    with pytest.raises(ImageError) as by_region:
        open_regions(str(path))
    assert str(by_region.value) == str(whole.value)
    assert os.path.exists(path)


def test_a_region_outside_the_image_is_refused(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, U8, tile=(32, 32))
    regions = open_regions(str(path))
    with pytest.raises(ParameterError, match="outside"):
        regions.read_region(slice(0, 1), slice(0, 3), slice(80, 91), slice(0, 4))
