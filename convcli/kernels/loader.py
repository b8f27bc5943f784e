"""Loading: kernel specs and filter files, all ending in one :class:`Filter` (shaped for
an image by :mod:`convcli.kernels.shaping`).

A spec is, in this order of precedence:

1. a name from :mod:`convcli.kernels.named`, optionally with arguments: ``gaussian:5``,
   ``gaussian:7,1.5``, ``sobel-x``;
2. an inline matrix: ``"1 2 1; 2 4 2; 1 2 1"``, JSON ``[[1,2,1],[2,4,2],[1,2,1]]`` or an
   ImageMagick kernel string ``"3x3: 1,2,1 2,4,2 1,2,1"``, when it parses;
3. a file (any spec containing a path separator, or naming an existing file that is
   neither a name nor a matrix that parses): ``.txt .csv .tsv`` text, libvips ``.mat``,
   ``.npy``/``.npz``, filter configurations ``.json``/``.toml``. ``./NAME`` reaches a
   file named like a kernel or a matrix (``./3``); the spec wins otherwise, with a
   warning, so that ``-k 3`` means the same in every directory.

Kernels are applied as cross-correlation (not flipped), as in PyTorch, libvips and
ImageMagick's ``-convolve``. Even-sized kernels sit off-centre: with padding "same"
the extra row/column of padding goes to the bottom/right (TensorFlow's rule).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from convcli.conv.padding import PAD_MODES
from convcli.errors import KernelError, shown_name
from convcli.kernels.filters import COMBINE, Filter, filter_bank
from convcli.kernels.imagemagick import imagemagick_spec
from convcli.kernels.named import NAMED, list_kernels, named_kernel
from convcli.kernels.numpy_files import load_numpy
from convcli.kernels.parsers import (
    IMAGEMAGICK,
    parse_imagemagick,
    parse_inline,
    parse_text,
    parse_vips_mat,
    read_config,
    read_text,
)
from convcli.kernels.values import as_bias_array, as_weight_array

__all__ = ["NAMED", "list_kernels", "load_filter"]


TEXT_SUFFIXES = {".txt", ".csv", ".tsv"}
OPTION_KEYS = ("stride", "padding", "dilation", "groups", "pad_mode", "flip", "normalize")
CONFIG_KEYS = ("weight", "bank", "combine", "bias", *OPTION_KEYS, "description")


def load_filter(spec: str, *, base_dir: str | Path | None = None) -> Filter:
    """Load a filter from a kernel name, a file or an inline matrix.

    Parameters
    ----------
    spec : str
        See the module documentation for the accepted forms.
    base_dir : path, optional
        Where relative file names are looked up (default: the working directory).

    Examples
    --------
    >>> load_filter("gaussian:3").weight.shape
    (3, 3)
    >>> load_filter("1 2 1").weight.tolist()
    [[1.0, 2.0, 1.0]]
    """
    return _load(spec, base_dir, ())


def _load(spec: str, base_dir: str | Path | None, chain: tuple[Path, ...]) -> Filter:
    """:func:`load_filter`, with the configuration files that led here (to stop cycles)."""
    if not isinstance(spec, str) or not spec.strip():
        raise KernelError(
            "kernel spec is empty; give a name (see 'convcli kernels'), a file or a matrix"
        )
    if spec.strip()[:3].lower() == "im:":
        weight, offcentre, description = imagemagick_spec(spec)
        return Filter(weight, description=description, source=spec, offcentre=offcentre)
    explicit_path = spec.startswith((".", "/", "~"))
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~name" for a user that does not exist
        path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    named = None if explicit_path else named_kernel(spec)
    if isinstance(named, tuple):  # a bank: sobel, scharr, prewitt
        bank = tuple(as_weight_array(w, f"kernel {spec!r}") for w in named)
        found = Filter(bank[0], bank=bank, description=spec.strip(), source=spec)
        return _shadowing(found, spec, path, "a kernel name")
    if named is not None:
        weight = as_weight_array(named, f"kernel {spec!r}")
        found = Filter(weight, description=spec.strip(), source=spec)
        return _shadowing(found, spec, path, "a kernel name")
    looks_like_path = "/" in spec or "\\" in spec or path.suffix.lower() in _FILE_SUFFIXES
    try:
        is_file, is_dir, exists = path.is_file(), path.is_dir(), path.exists()
    except OSError:  # e.g. a long inline matrix is a name too long for the file system
        is_file = is_dir = exists = False
    if not explicit_path and "/" not in spec and "\\" not in spec:
        # A spec that parses is a spec, as a name is: a file of that name is reached as
        # ./NAME (a warning says so), so that -k 3 means the same in every directory.
        try:
            inline = _inline(spec)
        except KernelError:
            if not exists:
                raise
            inline = None  # not a matrix after all: the file of that name
        if inline is not None:
            return _shadowing(inline, spec, path, "an inline matrix")
    if is_file:
        return _load_file(path, chain)
    if is_dir:
        raise KernelError(
            f"kernel file {spec!r} is a directory, not a kernel file; name a file in it"
        )
    if exists:  # a named pipe, a device: never read (/dev/zero would never end)
        raise KernelError(
            f"kernel file {spec!r} is not a regular file (a pipe or a device); save the "
            f"kernel to a file and name that"
        )
    if looks_like_path and not _looks_inline(spec):
        raise KernelError(f"kernel file {spec!r} does not exist")
    inline = _inline(spec)
    if inline is not None:
        return inline
    close = difflib.get_close_matches(spec.partition(":")[0].lower(), NAMED, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise KernelError(
        f"unknown kernel {spec!r}: {hint}not a kernel name (see 'convcli kernels'), not a "
        f"file, and not a matrix like '1 2 1; 2 4 2; 1 2 1'"
    )


def _inline(spec: str) -> Filter | None:
    """An ImageMagick kernel string or an inline matrix, or None when ``spec`` looks like
    neither; a :class:`KernelError` when it looks like one but does not parse."""
    if IMAGEMAGICK.match(spec):
        return Filter(as_weight_array(parse_imagemagick(spec), f"kernel {spec!r}"), source=spec)
    if _looks_inline(spec):
        weight = parse_inline(spec)
        return Filter(weight, source=spec, warnings=_one_row_warnings(spec, weight))
    return None


def _shadowing(found: Filter, spec: str, path: Path, what: str) -> Filter:
    """``found`` with a warning when a file also has the spec's name: the spec won."""
    try:
        if not path.exists():
            return found
    except OSError:  # a name too long for the file system: no such file
        return found
    where = (
        "in the working directory" if path.parent == Path(".") else f"in {shown_name(path.parent)}"
    )
    warning = (
        f"kernel {spec!r} is read as {what}, though a file named {spec!r} exists {where}; "
        f"write {'./' + spec!r} to use the file"
    )
    return replace(found, warnings=(*found.warnings, warning))


_FILE_SUFFIXES = TEXT_SUFFIXES | {".mat", ".npy", ".npz", ".json", ".toml"}


def _one_row_warnings(spec: str, weight: np.ndarray) -> tuple[str, ...]:
    """A warning for an inline matrix read as one row of k*k >= 9 values: most likely a
    k x k kernel written with ',' between rows, where ';' ends a row.

    Examples
    --------
    >>> print(_one_row_warnings("0 -1 0, -1 5 -1, 0 -1 0", parse_inline("0 -1 0, -1 5 -1, 0 -1 0"))[0])
    kernel '0 -1 0, -1 5 -1, 0 -1 0' is one row of 9 values (1x9): ',' and spaces separate values, ';' ends a row; for a 3x3 kernel write '0 -1 0; -1 5 -1; 0 -1 0' (or [[...]] for one row)
    """  # noqa: E501
    count = weight.shape[-1]
    side = int(round(count**0.5))
    explicit = "".join(spec.split()).startswith("[[")  # [[...]]: one row, as written
    if weight.shape[0] != 1 or weight.ndim != 2 or count < 9 or side * side != count or explicit:
        return ()
    tokens = [t for t in re.split(r"[\s,;\[\]]+", spec) if t]  # the values as typed
    if len(tokens) != count:
        tokens = [repr(float(v)) for v in weight[0]]
    rows = [tokens[r * side : (r + 1) * side] for r in range(side)]
    if spec.lstrip().startswith("["):
        written = "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]"
        rule = "a flat JSON list is one row"
    else:
        written = "; ".join(" ".join(r) for r in rows)
        rule = "',' and spaces separate values, ';' ends a row"
    return (
        f"kernel {spec!r} is one row of {count} values (1x{count}): {rule}; for a "
        f"{side}x{side} kernel write {written!r} (or [[...]] for one row)",
    )


def _looks_inline(spec: str) -> bool:
    """A JSON list, or numbers with separators (then bad tokens get named by the parser)."""
    text = spec.strip()
    if text.startswith("["):
        return True
    return any(c.isdigit() for c in text) and (
        all(c in "0123456789.+-eE ,;\t\n\r" for c in text) or any(c in ",; \n" for c in text)
    )


def _load_file(path: Path, chain: tuple[Path, ...]) -> Filter:
    suffix = path.suffix.lower()
    if suffix in {".npy", ".npz"}:
        weight, bias = load_numpy(path)
        return Filter(weight, bias, source=str(path), files=(str(path),))
    if suffix in {".json", ".toml"}:
        return _load_config(path, chain)
    text = read_text(path)
    if suffix == ".mat":
        matrix, offset = parse_vips_mat(text, shown_name(path))
        # libvips adds the offset in the image's units; convcli's pixels are 0..1.
        bias = as_bias_array(offset / 255.0, f"{shown_name(path)}: offset") if offset else None
        return Filter(
            as_weight_array(matrix, shown_name(path)), bias, source=str(path), files=(str(path),)
        )
    weight = as_weight_array(parse_text(text, shown_name(path)), shown_name(path))
    return Filter(weight, source=str(path), files=(str(path),))


def _load_config(path: Path, chain: tuple[Path, ...]) -> Filter:
    here = path.resolve()
    if here in chain:
        raise KernelError(
            f"{shown_name(path)}: "
            f"its 'weight' leads back to this file ({' -> '.join(p.name for p in chain)} "
            f"-> {path.name}); give a matrix or another file"
        )
    data = read_config(path)
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise KernelError(
            f"{shown_name(path)}: "
            f"unknown key {unknown[0]!r}; allowed keys are {', '.join(CONFIG_KEYS)}"
        )
    if ("weight" in data) == ("bank" in data):
        raise KernelError(
            f"{shown_name(path)}: "
            f"no 'weight' key; give a matrix, a kernel name or a file (or 'bank': a "
            f"list of them, whose responses combine by 'combine')"
            if "bank" not in data
            else f"{shown_name(path)}: give 'weight' or 'bank', not both"
        )
    if "combine" in data and ("bank" not in data or data["combine"] not in COMBINE):
        raise KernelError(
            f"{shown_name(path)}: "
            f"'combine' must be {' or '.join(map(repr, COMBINE))}, with a 'bank'; "
            f"got {data['combine']!r}" + ("" if "bank" in data else " without one")
        )
    files: tuple[str, ...] = (str(path),)
    members = []
    entries = data["bank"] if "bank" in data else [data["weight"]]
    if not isinstance(entries, list):
        raise KernelError(
            f"{shown_name(path)}: "
            f"'bank' must be a list of kernels (matrices, names or files), got {entries!r}"
        )
    for number, entry in enumerate(entries, start=1):
        where = (
            f"{shown_name(path)}: bank entry {number}"
            if "bank" in data
            else f"{shown_name(path)}: weight"
        )
        if isinstance(entry, str):
            inner = _load(entry, path.parent, (*chain, here))
            members.append(replace(inner, options=MappingProxyType({})))
            files = (*files, *inner.files)
        else:
            members.append(Filter(as_weight_array(entry, where), source=where))
    bias = members[0].bias if "weight" in data else None
    if "bias" in data:
        bias = as_bias_array(data["bias"], f"{shown_name(path)}: bias")
    options = {key: _option(path, key, data[key]) for key in OPTION_KEYS if key in data}
    description = data.get("description", "")
    if not isinstance(description, str):
        raise KernelError(f"{shown_name(path)}: 'description' must be text, got {description!r}")
    fields = dict(
        bias=bias,
        options=MappingProxyType(options),
        description=description,
        source=str(path),
        files=files,
    )
    if "bank" in data:
        found = filter_bank(
            members, shown_name(path), combine=data.get("combine", COMBINE[0]), **fields
        )
    else:
        found = replace(members[0], **fields)
    if options.get("normalize") and any(abs(w.sum()) < 1e-12 for w in found.weights):
        raise KernelError(
            f"{shown_name(path)}: 'normalize' is true but the weight sums to zero; drop 'normalize'"
        )
    return found


def _option(path: Path, key: str, value: object) -> object:
    """Validate one configuration option; the message names the key and what it takes."""

    def bad(expected: str) -> KernelError:
        return KernelError(f"{shown_name(path)}: '{key}' must be {expected}, got {value!r}")

    def ints(v: object, minimum: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= minimum

    # [v] stands for v, as PyTorch reads a one-element list.
    if key in ("stride", "dilation"):
        if ints(value, 1):
            return value
        if isinstance(value, list) and len(value) in (1, 2) and all(ints(v, 1) for v in value):
            return value[0] if len(value) == 1 else tuple(value)
        raise bad("a positive integer or [h, w]")
    if key == "padding":
        if isinstance(value, str) and value.lower() in ("same", "valid"):
            return value.lower()
        if ints(value, 0):
            return value
        if isinstance(value, list) and len(value) in (1, 2, 4) and all(ints(v, 0) for v in value):
            return value[0] if len(value) == 1 else tuple(value)
        raise bad('"same", "valid", an integer >= 0, [h, w] or [top, bottom, left, right]')
    if key == "groups":
        if ints(value, 1):
            return value
        raise bad("a positive integer")
    if key == "pad_mode":
        if value in PAD_MODES:
            return value
        raise bad(f"one of {', '.join(PAD_MODES)}")
    if isinstance(value, bool):  # flip, normalize
        return value
    raise bad("true or false")
