"""Zarr arrays in and out, for images too large for one file in memory (``zarr`` is
imported on first use; it comes with the ``[dask]`` extra).

In: a Zarr v2 or v3 array (a directory store), read a region at a time
(:class:`ZarrRegions`), or whole by :func:`convcli.images.reading.read_image`. Shapes as
``.npy``: (H, W), (C, H, W) or (N, C, H, W), raw values as float32 (no scaling). An
OME-Zarr image (a group whose ``multiscales`` name its levels) is read at level 0, its
axes by name: ``c`` the channels, ``y`` and ``x`` the rows and columns, and at most one
other axis longer than 1 (``t`` or ``z``) the frames.

Out: a Zarr v3 array at the store's root, (C, H, W) for one frame and (N, C, H, W) for
several, float32 values (raw, as ``.npy``, unless ``--range`` maps them), in chunks of
all channels by ``chunk`` x ``chunk`` pixels, zstd-compressed. A store is written under
a temporary name beside its target and renamed into place when complete
(:func:`staged_store`): a failure or Ctrl-C leaves nothing, and an existing store is
replaced only then.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from convcli.errors import DependencyError, ImageError, OutputError, shown_name
from convcli.images.outputs import Staged, staged_output
from convcli.images.regions import Regions

_METADATA = ("zarr.json", ".zarray", ".zgroup")
CHUNK = 512  # output chunk side (--tile)


def zarr_module():
    """The ``zarr`` module, or a :class:`DependencyError` naming the extra."""
    try:
        import zarr
    except ImportError as err:
        raise DependencyError(
            f"Zarr needs the zarr package, which could not be imported ({err}): "
            f"pip install 'convcli[dask]'"
        ) from None
    return zarr


def is_zarr(path: str | Path) -> bool:
    """A directory holding Zarr metadata (v3's ``zarr.json``, v2's ``.zarray``/``.zgroup``).

    Examples
    --------
    >>> is_zarr("sample_images"), is_zarr("no-such.zarr")
    (False, False)
    """
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, m)) for m in _METADATA)


def _open_array(path: str, source: str):
    """The array to read at ``path`` and the name of each of its axes (None: by position)."""
    zarr = zarr_module()
    try:
        node = zarr.open(path, mode="r")
    except Exception as err:  # zarr raises many kinds on damaged metadata
        raise ImageError(f"{source}: not a readable Zarr store ({err})") from None
    axes = None
    if not hasattr(node, "shape"):  # a group: an OME-Zarr image's level 0
        attrs = dict(node.attrs)
        scales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        try:
            level = scales[0]["datasets"][0]["path"]
            axes = [a["name"] if isinstance(a, dict) else a for a in scales[0].get("axes", [])]
            node = node[level]
        except (KeyError, IndexError, TypeError):
            inside = sorted(node.array_keys())
            example = f"{source}/{inside[0]}" if inside else f"{source}/NAME"
            raise ImageError(
                f"{source}: a Zarr group, not an array (and no OME-Zarr image: no readable "
                f"multiscales); give the path of an array inside it, e.g. {example}"
            ) from None
    dtype = np.dtype(node.dtype)
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ImageError(f"{source}: Zarr dtype {dtype} is not real numbers")
    if axes is not None and len(axes) != node.ndim:
        axes = None
    return node, axes


def _layout(shape: tuple[int, ...], axes: list[str] | None, source: str) -> list[str]:
    """Each stored axis's role: ``n`` (frames), ``c``, ``y``, ``x`` or ``1`` (a singleton
    dropped)."""
    if axes is None or not {"y", "x"} <= set(axes):
        roles = {2: ["y", "x"], 3: ["c", "y", "x"], 4: ["n", "c", "y", "x"]}.get(len(shape))
        if roles is None or 0 in shape:
            raise ImageError(
                f"{source}: Zarr images are (H, W), (C, H, W) or (N, C, H, W); got {shape}"
            )
        return roles
    roles = []
    for name, size in zip(axes, shape, strict=True):
        roles.append(name if name in ("c", "y", "x") else ("n" if size > 1 else "1"))
    if roles.count("n") > 1:
        raise ImageError(
            f"{source}: axes {axes} of shape {shape}: more than one of them besides c, y, x "
            f"is longer than 1; convcli reads one as frames"
        )
    return roles


class ZarrRegions(Regions):
    """A Zarr array (or OME-Zarr level 0) as (N, C, H, W) float32 raw values.

    Examples
    --------
    >>> import tempfile, os, zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "x.zarr")
    >>> zarr.create_array(store=path, shape=(4, 6), dtype="uint8", chunks=(2, 2))[:] = 7
    >>> regions = ZarrRegions(path)
    >>> regions.shape, regions.read_region(slice(0, 1), slice(0, 1), slice(0, 1), slice(0, 2))
    ((1, 1, 4, 6), array([[[[7., 7.]]]], dtype=float32))
    """

    format = "ZARR"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        array, axes = _open_array(self.path, self.source)
        self.roles = _layout(tuple(array.shape), axes, self.source)
        size = dict(zip(self.roles, array.shape, strict=True))
        self.shape = (size.get("n", 1), size.get("c", 1), size["y"], size["x"])

    def _open(self):
        return _open_array(self.path, self.source)[0]

    def _read(self, array, samples, channels, rows, cols) -> np.ndarray:
        wanted = {"n": samples, "c": channels, "y": rows, "x": cols}
        index = tuple(wanted.get(role, 0) for role in self.roles)
        kept = [role for role in self.roles if role != "1"]
        try:
            values = np.asarray(array[index])
        except Exception as err:  # a missing or damaged chunk
            raise ImageError(f"{self.source}: damaged Zarr data ({err})") from None
        order = [kept.index(role) for role in "ncyx" if role in kept]
        values = values.transpose(order)
        for axis, role in enumerate("ncyx"):
            if role not in kept:
                values = np.expand_dims(values, axis)
        return values.astype(np.float32, copy=False)


def read_zarr(path: str, max_pixels: int, max_frames: int):
    """The whole array at ``path`` as (N, C, H, W) float32, within ``max_pixels`` and
    ``max_frames``."""
    from convcli.images.limits import check_frames, check_pixels, check_samples

    regions = ZarrRegions(path)
    n, c, h, w = regions.shape
    check_frames(regions.source, n, max_frames)
    check_pixels(regions.source, w, h, n, max_pixels)
    check_samples(regions.source, "frames", n, c, h, w, max_pixels)
    whole = regions.read_region(slice(0, n), slice(0, c), slice(0, h), slice(0, w))
    return whole, regions.warnings


def stored_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The stored shape of (N, C, H, W) values: (C, H, W) for one frame, as ``.npy``."""
    return tuple(shape[1:]) if shape[0] == 1 else tuple(shape)


def create(path: str, shape: tuple[int, ...], *, chunk: int | tuple[int, int] = CHUNK) -> None:
    """A new Zarr v3 float32 array of (N, C, H, W) ``shape`` at the root of ``path``, in
    chunks of every channel by ``chunk`` (a side, or (h, w)) pixels."""
    stored = stored_shape(shape)
    tall, wide = (chunk, chunk) if isinstance(chunk, int) else chunk
    chunks = (*stored[:-2], min(tall, stored[-2]), min(wide, stored[-1]))
    if len(stored) == 4:
        chunks = (1, *chunks[1:])
    _new_array(path, stored, chunks)


def _new_array(store, stored: tuple[int, ...], chunks: tuple[int, ...]):
    names = ("c", "y", "x") if len(stored) == 3 else ("n", "c", "y", "x")
    return zarr_module().create_array(
        store=store,
        shape=stored,
        chunks=chunks,
        dtype="float32",
        zarr_format=3,
        fill_value=0,
        dimension_names=names,
    )


def write_region(path: str, values: np.ndarray, samples: slice, rows: slice, cols: slice) -> None:
    """Write (N, C, h, w) ``values`` into the array at ``path`` (made by :func:`create`).

    Zarr encodes the chunks in memory; their files are then written inside the store as
    it is (:func:`_write_inside`), never making it again: a worker still writing a block
    after an interrupted run removed its temporary store fails instead of leaving a new
    one behind (Zarr's own writer makes every missing directory).
    """
    zarr = zarr_module()
    on_disk = zarr.open_array(path, mode="r")  # read only: fails if the store is gone
    encoded: dict = {}
    array = _new_array(zarr.storage.MemoryStore(encoded), on_disk.shape, on_disk.chunks)
    if array.ndim == 3:
        array[:, rows, cols] = values[0]
    else:
        array[samples, :, rows, cols] = values
    for key, data in encoded.items():
        if key != "zarr.json":
            _write_inside(path, key, data.to_bytes())


def _write_inside(root: str, key: str, data: bytes) -> None:
    """Write ``data`` to the file ``root/key``, making the directories of ``key`` inside
    ``root`` but never ``root`` itself: each step is taken from the directory before it
    (``dir_fd``), so once ``root`` is removed every step fails (a directory that was
    removed takes no new entries), even for a writer that opened it before."""
    *directories, name = key.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for directory in directories:
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, dir_fd=fd)
            inner = os.open(directory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, dir_fd=fd)
        with os.fdopen(out, "wb") as stream:
            stream.write(data)
    finally:
        os.close(fd)


def write_zarr(
    pixels: np.ndarray, path: str, *, chunk: int = CHUNK, staged: list[Staged] | None = None
) -> None:
    """(N, C, H, W) float32 values as a new Zarr store at ``path``, atomically (with
    ``staged``, left complete under its temporary name and appended there, as
    :func:`convcli.images.outputs.atomic_output` does)."""
    store = staged_store(path)
    try:
        create(str(store.temporary), pixels.shape, chunk=chunk)
        n, _, h, w = pixels.shape
        write_region(str(store.temporary), pixels, slice(0, n), slice(0, h), slice(0, w))
    except BaseException:
        store.discard()
        raise
    if staged is None:
        store.commit()
    else:
        staged.append(store)


def staged_store(path: str) -> Staged:
    """An empty temporary store beside ``path`` (``.NAME.<hex>.part``), put in place by
    :meth:`~convcli.images.outputs.Staged.commit` (every file fsynced first). An
    existing Zarr store at ``path`` is replaced then; any other existing directory or
    file is refused here, before anything is written."""
    target = Path(path)
    if target.exists() and not is_zarr(target):
        what = "a directory" if target.is_dir() else "a file"
        raise OutputError(
            f"{shown_name(path)}: is {what} but not a Zarr store; convcli replaces only a store"
        )
    if not target.parent.is_dir():
        raise OutputError(
            f"{shown_name(path)}: "
            f"the directory {str(target.parent)!r} does not exist; create it first"
        )
    return staged_output(path, directory=True)
