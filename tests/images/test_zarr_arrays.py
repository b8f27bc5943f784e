"""Zarr in (v2, v3, OME-Zarr level 0) by region, and out atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest

from convcli.errors import ImageError, OutputError
from convcli.images import zarr_arrays
from convcli.images.regions import open_regions
from convcli.images.zarr_arrays import ZarrRegions

zarr = pytest.importorskip("zarr")

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(
    ("stored", "expected"),
    [((30, 40), (1, 1, 30, 40)), ((3, 30, 40), (1, 3, 30, 40)), ((2, 3, 30, 40), (2, 3, 30, 40))],
)
def test_arrays_of_either_version_read_by_region_as_raw_floats(tmp_path, version, stored, expected):
    path = str(tmp_path / "x.zarr")
    values = RNG.integers(0, 1000, stored).astype(np.uint16)
    zarr.create_array(
        store=path, shape=stored, dtype="uint16", chunks=(7,) * len(stored), zarr_format=version
    )[...] = values
    regions = open_regions(path)
    assert isinstance(regions, ZarrRegions) and regions.shape == expected
    whole = values.reshape(expected).astype(np.float32)
    n, c, _, _ = expected
    got = regions.read_region(slice(0, n), slice(0, c), slice(4, 23), slice(9, 40))
    np.testing.assert_array_equal(got, whole[:, :, 4:23, 9:40])
    assert got.dtype == np.float32


def test_an_ome_zarr_image_is_read_at_level_zero_by_its_axes(tmp_path):
    path = str(tmp_path / "image.ome.zarr")
    group = zarr.open_group(path, mode="w")
    level0 = RNG.random((1, 2, 5, 20, 30), dtype=np.float32)  # t c z y x: z becomes frames
    group.create_array("0", shape=level0.shape, dtype="float32", chunks=(1, 1, 1, 8, 8))[...] = (
        level0
    )
    group.create_array("1", shape=(1, 2, 5, 10, 15), dtype="float32")
    axes = [{"name": name} for name in "tczyx"]
    group.attrs["multiscales"] = [{"axes": axes, "datasets": [{"path": "0"}, {"path": "1"}]}]
    regions = open_regions(path)
    assert regions.shape == (5, 2, 20, 30)
    got = regions.read_region(slice(1, 4), slice(0, 2), slice(3, 11), slice(0, 30))
    np.testing.assert_array_equal(got, level0[0].transpose(1, 0, 2, 3)[1:4, :, 3:11])


def test_a_group_that_is_no_image_names_the_array_to_give(tmp_path):
    path = str(tmp_path / "g.zarr")
    zarr.open_group(path, mode="w").create_array("a", shape=(4, 4), dtype="uint8")
    with pytest.raises(ImageError, match=r"a Zarr group, not an array .* e\.g\. \S*g\.zarr/a$"):
        open_regions(path)
    assert open_regions(path + "/a").shape == (1, 1, 4, 4)


def test_shapes_and_dtypes_an_image_cannot_have_are_refused(tmp_path):
    five = str(tmp_path / "five.zarr")
    zarr.create_array(store=five, shape=(2, 2, 2, 4, 4), dtype="uint8")
    with pytest.raises(ImageError, match=r"\(H, W\), \(C, H, W\) or \(N, C, H, W\)"):
        open_regions(five)
    text = str(tmp_path / "text.zarr")
    zarr.create_array(store=text, shape=(4, 4), dtype="bool")
    with pytest.raises(ImageError, match="not real numbers"):
        open_regions(text)


@pytest.mark.parametrize("frames", [1, 2])
def test_write_zarr_round_trips_as_a_v3_array_at_the_root(tmp_path, frames):
    path = str(tmp_path / "out.zarr")
    values = RNG.random((frames, 3, 70, 90), dtype=np.float32)
    zarr_arrays.write_zarr(values, path, chunk=32)
    array = zarr.open_array(path, mode="r")
    assert array.metadata.zarr_format == 3
    assert array.shape == ((3, 70, 90) if frames == 1 else (frames, 3, 70, 90))
    np.testing.assert_array_equal(array[...], values[0] if frames == 1 else values)
    assert sorted(os.listdir(tmp_path)) == ["out.zarr"]


def test_a_store_replaces_an_old_store_and_only_a_store(tmp_path):
    path = str(tmp_path / "out.zarr")
    zarr_arrays.write_zarr(np.zeros((1, 1, 8, 8), np.float32), path)
    zarr_arrays.write_zarr(np.ones((1, 2, 4, 4), np.float32), path)
    assert zarr.open_array(path, mode="r").shape == (2, 4, 4)
    assert sorted(os.listdir(tmp_path)) == ["out.zarr"]
    folder = tmp_path / "folder.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a Zarr store"):
        zarr_arrays.write_zarr(np.ones((1, 1, 4, 4), np.float32), str(folder))
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_failure_while_writing_leaves_nothing_and_keeps_the_old_store(tmp_path):
    path = str(tmp_path / "out.zarr")
    zarr_arrays.write_zarr(np.zeros((1, 1, 8, 8), np.float32), path)
    staged = zarr_arrays.staged_store(path)
    zarr_arrays.create(str(staged.temporary), (1, 1, 8, 8))
    staged.discard()  # what a failing or interrupted job does
    assert sorted(os.listdir(tmp_path)) == ["out.zarr"]
    assert zarr.open_array(path, mode="r").shape == (1, 8, 8)


def test_a_block_written_after_its_store_was_removed_fails_and_leaves_nothing(
    tmp_path, monkeypatch
):
    staged = zarr_arrays.staged_store(str(tmp_path / "out.zarr"))
    temporary = str(staged.temporary)
    zarr_arrays.create(temporary, (1, 2, 64, 64), chunk=16)
    values = RNG.random((1, 2, 16, 32), dtype=np.float32)
    zarr_arrays.write_region(temporary, values, slice(0, 1), slice(16, 32), slice(0, 32))
    np.testing.assert_array_equal(zarr.open_array(temporary)[:, 16:32, :32], values[0])
    staged.discard()  # an interrupted run, while a worker still has a block to write
    with pytest.raises(FileNotFoundError):
        zarr_arrays.write_region(temporary, values, slice(0, 1), slice(32, 48), slice(0, 32))
    assert os.listdir(tmp_path) == []

    # A worker that opened the store just before it went: its next step fails too.
    staged = zarr_arrays.staged_store(str(tmp_path / "out.zarr"))
    temporary = str(staged.temporary)
    zarr_arrays.create(temporary, (1, 2, 64, 64), chunk=16)
    mkdir = os.mkdir

    def removed_first(name, *args, **kwargs):
        staged.discard()
        mkdir(name, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", removed_first)
    with pytest.raises(FileNotFoundError):
        zarr_arrays.write_region(temporary, values, slice(0, 1), slice(0, 16), slice(0, 32))
    assert os.listdir(tmp_path) == []


def test_an_interrupted_run_removes_a_store_not_yet_in_place(tmp_path):
    from convcli.images.outputs import remove_unplaced

    staged = zarr_arrays.staged_store(str(tmp_path / "out.zarr"))
    zarr_arrays.create(str(staged.temporary), (1, 1, 8, 8))
    remove_unplaced()
    assert os.listdir(tmp_path) == []
