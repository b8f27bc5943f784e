"""open_regions: which inputs are read by region, and .npy by mapped rows."""

from __future__ import annotations

import numpy as np
import pytest

from convcli.errors import ImageError
from convcli.images.reading import read_image
from convcli.images.regions import NpyRegions, open_regions
from tests.paths import SAMPLES


@pytest.mark.parametrize(
    "stored", [(30, 40), (3, 30, 40), (2, 3, 30, 40)], ids=["HW", "CHW", "NCHW"]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int8])
def test_npy_regions_are_read_image_s_values(tmp_path, stored, dtype):
    path = tmp_path / "x.npy"
    array = (np.random.default_rng(0).random(stored) * 100).astype(dtype)
    np.save(path, array)
    regions = open_regions(str(path))
    assert isinstance(regions, NpyRegions)
    whole = read_image(str(path))
    assert regions.shape == whole.pixels.shape and regions.depth == whole.depth == 32
    n, c, _, _ = regions.shape
    got = regions.read_region(slice(0, n), slice(0, c), slice(3, 17), slice(5, 39))
    np.testing.assert_array_equal(got, whole.pixels[:, :, 3:17, 5:39])
    last = regions.read_region(slice(n - 1, n), slice(c - 1, c), slice(29, 30), slice(0, 1))
    np.testing.assert_array_equal(last, whole.pixels[n - 1 :, c - 1 :, 29:, :1])


def test_a_channels_last_npy_warns_as_read_image_does(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((40, 50, 3), np.float32))
    assert open_regions(str(path)).warnings == read_image(str(path)).warnings != []


def test_a_truncated_npy_is_refused_from_its_header(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((100, 100), np.float32))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ImageError, match="truncated or damaged"):
        open_regions(str(path))


def test_a_pickled_npy_is_refused_as_read_image_refuses_it(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="pickle"):
        open_regions(str(path))


def test_inputs_that_cannot_be_read_by_region(tmp_path):
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.zeros((20, 30), np.float32)))
    plain_dir = tmp_path / "folder"
    plain_dir.mkdir()
    for path in [SAMPLES / "camera.png", "-", tmp_path / "missing.tif", plain_dir, fortran]:
        assert open_regions(str(path)) is None, path
