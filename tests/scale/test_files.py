"""Which files run in blocks (--chunks auto), and the checks made before the first block."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from convcli.conv import memory
from convcli.errors import OutputError, ResourceError
from convcli.images.reading import read_image
from convcli.images.regions import Regions
from convcli.jobs.pipeline import Step
from convcli.kernels import load_filter
from convcli.scale import files
from convcli.scale.schedulers import Inline
from tests.paths import SAMPLES

STEPS = [Step(load_filter("gaussian:5"))]


@pytest.fixture
def tiff(tmp_path) -> str:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.zeros((200, 300), np.uint8), tile=(64, 64))
    return str(path)


def blocks(**options) -> files.FileBlocks:
    return files.FileBlocks(Inline(), **{"max_pixels": 10**9, **options})


def test_an_input_read_by_region_that_fits_runs_in_memory(tiff):
    assert blocks().by_region(tiff, STEPS) is None


def test_an_input_read_by_region_runs_in_blocks_past_the_memory(tiff, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 << 20)
    regions = blocks().by_region(tiff, STEPS)
    assert isinstance(regions, Regions) and regions.shape == (1, 1, 200, 300)


def test_past_max_pixels_asked_for_or_on_a_cluster_it_runs_in_blocks(tiff):
    assert blocks(max_pixels=200 * 300 - 1).by_region(tiff, STEPS) is not None
    assert blocks(chunks=(64, 64)).by_region(tiff, STEPS) is not None
    assert blocks(prefer=True).by_region(tiff, STEPS) is not None


def test_a_png_is_decoded_first_and_in_blocks_only_when_its_filtering_does_not_fit(
    monkeypatch,
):
    png = str(SAMPLES / "camera.png")
    assert blocks(chunks=(8, 8)).by_region(png, STEPS) is None
    image = read_image(png)
    assert not blocks().wanted(image, STEPS)
    assert blocks(chunks=(8, 8)).wanted(image, STEPS)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 << 20)
    assert blocks().wanted(image, STEPS)


def test_an_uncompressed_output_past_the_free_space_is_refused_a_compressed_one_warned(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 2**30))
    shape = (1, 3, 30000, 30000)  # 2.5 GiB as 8-bit, 10 GiB as float32
    with pytest.raises(OutputError, match=r"takes 10\.1 GiB and its file system has 1\.0 GiB"):
        files.check_room(str(tmp_path / "o.npy"), "NPY", shape, 8, compressed=False)
    warnings = files.check_room(str(tmp_path / "o.tif"), "TIFF", shape, 8, compressed=True)
    assert warnings == [
        f"{tmp_path / 'o.tif'}: the output takes up to 2.5 GiB uncompressed and its file system "
        f"has 1.0 GiB free; it fits only if it compresses that well"
    ]
    assert files.check_room("-", "TIFF", shape, 8, compressed=True) == []  # a pipe: no file


def test_a_format_written_whole_must_fit_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    shape = (1, 3, 20000, 20000)
    with pytest.raises(ResourceError, match="PNG is written whole; write a .tif, .zarr or .npy"):
        files.check_room(str(tmp_path / "o.png"), "PNG", shape, 8, compressed=True)
    for name, fmt in (("o.tif", "TIFF"), ("o.zarr", "ZARR"), ("o.npy", "NPY")):
        files.check_room(str(tmp_path / name), fmt, (1, 3, 2000, 2000), 8, compressed=True)
