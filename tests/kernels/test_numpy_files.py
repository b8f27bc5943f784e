"""NumPy kernel files (convcli/kernels/numpy_files.py): .npy weights and .npz archives,
never unpickled, never trusted for the sizes they declare."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels import load_filter
from tests.kernels import write


def test_numpy_files(tmp_path):
    np.save(tmp_path / "w.npy", np.ones((2, 3, 3, 3)))
    assert load_filter(str(tmp_path / "w.npy")).weight.shape == (2, 3, 3, 3)
    np.savez(tmp_path / "w.npz", weight=np.ones((3, 3)), bias=np.array([0.5]))
    f = load_filter(str(tmp_path / "w.npz"))
    assert f.bias.tolist() == [0.5]
    np.savez(tmp_path / "nope.npz", kernel=np.ones((3, 3)))
    with pytest.raises(KernelError, match="no 'weight'"):
        load_filter(str(tmp_path / "nope.npz"))


def test_pickled_numpy_files_are_refused(tmp_path):
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(KernelError, match="pickle"):
        load_filter(str(tmp_path / "p.npy"))
    np.savez(tmp_path / "p.npz", weight=np.array([None, 1], dtype=object))
    with pytest.raises(KernelError, match="pickle"):
        load_filter(str(tmp_path / "p.npz"))


@pytest.mark.parametrize("name", ["k.npy", "k.npz"])
def test_text_named_like_numpy_is_not_called_a_pickle(tmp_path, name):
    path = write(tmp_path, name, "1 2 1; 2 4 2; 1 2 1\n")
    with pytest.raises(KernelError) as err:
        load_filter(path)
    message = str(err.value)
    assert "pickle" not in message
    assert f"{name}: not a NumPy" in message and "name it .txt or .csv" in message


def test_numpy_magic_names_what_the_file_is_instead(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((3, 3)))
    (tmp_path / "one.npz").write_bytes((tmp_path / "one.npy").read_bytes())
    with pytest.raises(KernelError, match=r"one.npz: a single .npy array.*rename it to .npy"):
        load_filter(str(tmp_path / "one.npz"))
    binary = write(tmp_path, "b.npy", b"\x00\x01\x02garbage")
    with pytest.raises(KernelError, match=r"b.npy: not a NumPy .npy file.*numpy.save"):
        load_filter(binary)
    with pytest.raises(KernelError, match=r"e.npy: empty file"):
        load_filter(write(tmp_path, "e.npy", b""))


def test_npz_without_a_weight_names_what_it_holds_once(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, other=np.ones((3, 3)))
    with pytest.raises(KernelError) as info:
        load_filter(str(path))
    assert str(info.value) == f"{path}: no 'weight' array; it holds other"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_numpy_headers_that_declare_more_than_the_file_holds_are_refused(tmp_path):
    header = _npy_bytes(np.zeros((100, 100)))[:128]  # the header, no data
    with pytest.raises(KernelError, match=r"declares a \(100, 100\) array of float64"):
        load_filter(write(tmp_path, "w.npy", header))
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / f"w{method}.npz"
        with zipfile.ZipFile(path, "w", method) as archive:
            archive.writestr("weight.npy", header)
        with pytest.raises(KernelError, match=r"weight.npy\): its header declares"):
            load_filter(str(path))


def test_an_npz_member_claiming_more_than_deflate_can_give_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weight.npy", _npy_bytes(np.ones((3, 3))))
    data = bytearray(path.read_bytes())
    # The uncompressed size, in the local header (offset 22) and the central directory.
    for at in (22, data.rindex(b"PK\x01\x02") + 24):
        data[at : at + 4] = (1 << 31).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(KernelError, match="more than deflate can give"):
        load_filter(str(path))


def test_real_npz_files_still_load(tmp_path):
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, weight=np.zeros((256, 256)), bias=np.ones(1))  # compresses ~1000:1
        loaded = load_filter(str(path))
        assert loaded.weight.shape == (256, 256) and loaded.bias.tolist() == [1.0]


def _flag_every_member(path, flag: int, *, method: int | None = None) -> None:
    """Set a general-purpose flag bit (and optionally the compression method) of every
    member in the local headers and the central directory, as a damaged or foreign zip
    would have them."""
    data = bytearray(path.read_bytes())
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            data[at + flags_at] |= flag
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("flag", "method", "message"),
    [
        (0x1, None, r"w.npz: not a readable NumPy file \(.*encrypted"),
        (0x0, 97, r"w.npz \(weight.npy\): compressed with zip method 97"),
    ],
)
def test_members_zip_cannot_extract_are_one_kernel_error(tmp_path, flag, method, message):
    path = tmp_path / "w.npz"
    np.savez(path, weight=np.ones((3, 3)))
    _flag_every_member(path, flag, method=method)
    with pytest.raises(KernelError, match=message):
        load_filter(str(path))


def _long_header_npy() -> bytes:
    """A .npy array whose header is padded past NumPy's 10,000-byte safety limit."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": (3, 3)}).encode()
    header += b" " * 20000 + b"\n"
    return b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header + bytes(36)


def test_a_header_past_numpys_limit_is_named_not_called_a_pickle(tmp_path):
    # numpy's refusal speaks of allow_pickle: it was "refused: it holds Python objects".
    path = write(tmp_path, "w.npy", _long_header_npy())
    with pytest.raises(KernelError, match=r"w.npy: its .npy header is over NumPy's safety limit"):
        load_filter(path)
