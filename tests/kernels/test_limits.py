"""One size limit for every kernel (convcli/kernels/limits.py), checked from what a file
declares before its data is read: 1001 taps a side, 2**24 values, 16 MiB of text."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels import load_filter
from convcli.kernels.limits import MAX_TAPS, MAX_TEXT_BYTES, MAX_VALUES
from tests import hostile


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    stream = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue()


def _sparse_npy(path, shape: tuple[int, ...]) -> str:
    """A .npy whose data is all there (zeros) without taking the disk: a sparse file."""
    header = _npy_header(shape)
    with open(path, "wb") as stream:
        stream.write(header)
        stream.truncate(len(header) + int(np.prod(shape)) * 4)
    return str(path)


@pytest.fixture
def no_numpy_load(monkeypatch):
    """Refusals must come from the headers: numpy.load is never reached."""

    def refuse(*args, **kwargs):
        raise AssertionError("numpy.load was called")

    monkeypatch.setattr(np, "load", refuse)


@pytest.mark.parametrize(
    ("shape", "needle"),
    [
        ((20000, 20000), "a kernel of 20000x20000 taps; convcli takes at most 1001"),
        ((3, MAX_TAPS + 1), "a kernel of 3x1002 taps"),
        (
            (17, 1000, 1000),
            "a weight of shape (17, 1000, 1000) holds 17,000,000 values; convcli takes at most "
            "16,777,216",
        ),
        ((4097, 4096, 1, 1), "a weight of shape (4097, 4096, 1, 1)"),
        ((1, 1, 1, 1, 1), "a kernel needs 2 to 4 dimensions"),
    ],
)
def test_a_npy_weight_past_the_limits_is_refused_from_its_header(
    tmp_path, no_numpy_load, shape, needle
):
    path = _sparse_npy(tmp_path / "w.npy", shape)
    with pytest.raises(KernelError) as refused:
        load_filter(path)
    assert str(refused.value).startswith(f"{path}: {needle}")


def test_the_largest_weights_within_the_limits_load(tmp_path):
    np.save(tmp_path / "side.npy", np.ones((1, MAX_TAPS), np.float32))
    assert load_filter(str(tmp_path / "side.npy")).weight.shape == (1, MAX_TAPS)
    np.save(tmp_path / "layer.npy", np.zeros((512, 512, 7, 7), np.float32))  # 12.8 million
    assert load_filter(str(tmp_path / "layer.npy")).weight.shape == (512, 512, 7, 7)


def test_a_npz_member_past_the_limits_is_refused_from_its_header(tmp_path, no_numpy_load):
    # The audit's bomb: 1.5 MB inflating 1000:1 to (20000, 20000) float32; here 4 MB of
    # zeros in a few KB, past the limit all the same.
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weight.npy", _npy_header((1002, 1002)) + bytes(1002 * 1002 * 4))
    assert path.stat().st_size < 10_000
    with pytest.raises(KernelError, match=r"w.npz \(weight.npy\): a kernel of 1002x1002 taps"):
        load_filter(str(path))


def test_a_npz_bias_past_the_limits_is_refused_from_its_header(tmp_path, no_numpy_load):
    path = tmp_path / "w.npz"
    size = MAX_VALUES + 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weight.npy", _npy_header((3, 3)) + bytes(36))
        archive.writestr("bias.npy", _npy_header((size,)) + bytes(size * 4))
    with pytest.raises(KernelError, match=r"w.npz \(bias.npy\): a bias of 16,777,217 values"):
        load_filter(str(path))


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".mat", ".json", ".toml"])
def test_a_text_filter_file_past_16_mib_is_refused_from_its_size(tmp_path, suffix, monkeypatch):
    # A 60 MB text took 12 s and 1.5 GB; nothing of this one is read.
    path = tmp_path / f"k{suffix}"
    with open(path, "wb") as stream:
        stream.truncate(MAX_TEXT_BYTES + 1)
    with pytest.raises(KernelError, match=r"16,777,217 bytes, more than a text filter file"):
        load_filter(str(path))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (" ".join(["1"] * (MAX_TAPS + 1)), "a row of more than 1001 values"),
        ("\n".join(["1"] * (MAX_TAPS + 1)), "a block of more than 1001 rows"),
        ("1002 1\n" + "1 " * 1002, "a kernel of 1x1002 taps"),
    ],
)
def test_text_kernels_past_1001_taps_a_side_are_refused_as_they_are_read(tmp_path, text, needle):
    path = tmp_path / ("k.mat" if text.startswith("1002 1") else "k.txt")
    path.write_text(text)
    with pytest.raises(KernelError, match=needle):
        load_filter(str(path))


def test_inline_and_json_weights_meet_the_same_limit():
    with pytest.raises(KernelError, match="a kernel of 1x1002 taps"):
        load_filter("[" + ",".join(["1"] * 1002) + "]")
    assert load_filter(" ".join(["1"] * MAX_TAPS)).weight.shape == (1, MAX_TAPS)


def test_the_command_refuses_a_huge_weight_as_a_usage_error_under_a_memory_limit(tmp_path):
    # It allocated 1.6 GB, then "Error: ran out of memory" (exit 1).
    path = _sparse_npy(tmp_path / "w.npy", (20000, 20000))
    image = tmp_path / "a.png"
    image.write_bytes(hostile.encoded(hostile.pixels(), "PNG"))
    for args in (["kernels", path], ["apply", image, "-k", path, "-o", tmp_path / "o.png"]):
        line = hostile.assert_one_error(hostile.run(*args), code=2)
        assert "a kernel of 20000x20000 taps" in line
    assert not (tmp_path / "o.png").exists()
    os.remove(path)
