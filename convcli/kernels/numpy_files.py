"""NumPy kernel files, never unpickled: ``.npy`` (the weight) or ``.npz`` (``weight`` and
an optional ``bias``).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from convcli.errors import KernelError, check_npy_data, numpy_load_errors, shown_name
from convcli.kernels.limits import check_bias_shape, check_weight_shape
from convcli.kernels.values import as_bias_array, as_weight_array


def load_numpy(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``.npy`` (the weight) or ``.npz`` (``weight``, optional ``bias``); never unpickles.

    The file's first bytes are checked first: NumPy reads anything without its magic
    as a pickle, so a text matrix named ``.npy`` would be "refused: pickle" otherwise.
    """
    _check_numpy_magic(path)
    with numpy_load_errors(shown_name(path), KernelError, "NumPy file"):
        if path.suffix.lower() == ".npz":
            _check_npz_members(path)  # and their shapes, before any is read
            # Opened here, not by np.load: given a path, np.load leaves the file open when
            # the zip turns out damaged (a ResourceWarning, an error under -W error).
            with path.open("rb") as stream, np.load(stream, allow_pickle=False) as archive:
                if "weight" not in archive.files:
                    raise KernelError(
                        f"{shown_name(path)}: "
                        f"no 'weight' array; it holds {', '.join(archive.files) or 'none'}"
                    )
                weight = archive["weight"]
                bias = archive["bias"] if "bias" in archive.files else None
        else:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                shape, _ = check_npy_data(stream, size, shown_name(path), KernelError)
                check_weight_shape(shape, shown_name(path))
                stream.seek(0)
                weight, bias = np.load(stream, allow_pickle=False), None
    if not np.issubdtype(weight.dtype, np.number) or np.issubdtype(
        weight.dtype, np.complexfloating
    ):
        raise KernelError(
            f"{shown_name(path)}: weight has dtype {weight.dtype}; it must hold real numbers"
        )
    weight = as_weight_array(weight, shown_name(path))
    if bias is not None:
        bias = as_bias_array(bias, shown_name(path))
    return weight, bias


# Deflate never inflates more than 1032 to 1: a member that claims more is lying.
_DEFLATE_RATIO = 1032


def _check_npz_members(path: Path) -> None:
    """Each array in a ``.npz`` holds the data its header declares, and inflates to no
    more than its compressed size allows, and the weight and bias are within the kernel
    limits (:mod:`convcli.kernels.limits`), before ``numpy.load`` allocates them."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            where = f"{shown_name(path)} ({info.filename})"
            if info.compress_type == zipfile.ZIP_STORED:
                bound = info.compress_size
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                bound = info.compress_size * _DEFLATE_RATIO + 1024
            else:
                raise KernelError(
                    f"{where}: compressed with zip method {info.compress_type}; save it with "
                    f"numpy.savez or numpy.savez_compressed"
                )
            if info.file_size > bound:
                raise KernelError(
                    f"{where}: claims {info.file_size:,} bytes from {info.compress_size:,} "
                    f"compressed, more than deflate can give; the archive is damaged"
                )
            with archive.open(info) as member:
                shape, _ = check_npy_data(member, info.file_size, where, KernelError)
            if info.filename == "weight.npy":
                check_weight_shape(shape, where)
            elif info.filename == "bias.npy":
                check_bias_shape(shape, where)


NPY_MAGIC = np.lib.format.MAGIC_PREFIX
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def _check_numpy_magic(path: Path) -> None:
    """A ``.npy`` file starts with ``\\x93NUMPY`` and a ``.npz`` with a zip header;
    anything else is named for what it is not (and, if it reads as text, what to do)."""
    try:
        with path.open("rb") as stream:
            head = stream.read(512)
    except OSError as err:
        raise KernelError(f"{shown_name(path)}: cannot read it ({err.strerror or err})") from None
    npz = path.suffix.lower() == ".npz"
    if head.startswith(ZIP_MAGICS if npz else (NPY_MAGIC,)):
        return
    kind = ".npz archive (not a zip)" if npz else ".npy file (no \\x93NUMPY header)"
    if not head:
        raise KernelError(
            f"{shown_name(path)}: empty file, not a NumPy {'.npz' if npz else '.npy'} file"
        )
    if npz and head.startswith(NPY_MAGIC):
        raise KernelError(
            f"{shown_name(path)}: a single .npy array, not a .npz archive; rename it to .npy"
        )
    if not npz and head.startswith(ZIP_MAGICS):
        raise KernelError(
            f"{shown_name(path)}: a zip archive, not a .npy array; if it is a .npz, rename it"
        )
    try:
        head.decode("utf-8")
        text = b"\x00" not in head
    except UnicodeDecodeError as err:  # a multi-byte character cut at 512 bytes is still text
        text = b"\x00" not in head and len(head) == 512 and err.start >= len(head) - 3
    hint = (
        "it looks like text: for a matrix of numbers, name it .txt or .csv"
        if text
        else "save the weight with numpy.save (or numpy.savez for weight and bias)"
    )
    raise KernelError(f"{shown_name(path)}: not a NumPy {kind}; {hint}")
