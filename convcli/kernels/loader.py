"""Loading: kernel specs and filter files, all ending in one :class:`Filter` (shaped for
an image by :mod:`convcli.kernels.shaping`).

A spec is, in this order of precedence:

1. a name from :mod:`convcli.kernels.named`, optionally with arguments: ``gaussian:5``,
   ``gaussian:7,1.5``, ``sobel-x``;
2. a file (any spec containing a path separator or naming an existing file; ``./name``
   reaches a file that has a kernel's name): ``.txt .csv .tsv`` text, libvips ``.mat``,
   ``.npy``/``.npz``, filter configurations ``.json``/``.toml``;
3. an inline matrix: ``"1 2 1; 2 4 2; 1 2 1"``, JSON ``[[1,2,1],[2,4,2],[1,2,1]]`` or an
   ImageMagick kernel string ``"3x3: 1,2,1 2,4,2 1,2,1"``.

Kernels are applied as cross-correlation (not flipped), as in PyTorch, libvips and
ImageMagick's ``-convolve``. Even-sized kernels sit off-centre: with padding "same"
the extra row/column of padding goes to the bottom/right (TensorFlow's rule).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from convcli.conv.padding import PAD_MODES
from convcli.errors import KernelError
from convcli.kernels.named import NAMED, list_kernels, named_kernel
from convcli.kernels.numpy_files import load_numpy
from convcli.kernels.parsers import (
    IMAGEMAGICK,
    as_bias_array,
    as_weight_array,
    parse_imagemagick,
    parse_inline,
    parse_text,
    parse_vips_mat,
    read_config,
)

__all__ = ["NAMED", "Filter", "list_kernels", "load_filter"]


@dataclass(frozen=True)
class Filter:
    """A filter from any source: weight, optional bias, options from a config file.

    ``weight`` is float64 with 2 (Hf, Wf), 3 (C, Hf, Wf) or 4 (F, C/groups, Hf, Wf)
    dimensions; ``options`` holds validated ``stride``, ``padding``, ``dilation``,
    ``groups``, ``pad_mode``, ``flip``, ``normalize`` from a configuration file;
    ``files`` are the files it was read from (a configuration and the weight file it
    names), which outputs must never overwrite.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    source: str = ""
    files: tuple[str, ...] = ()


# Loading ----------------------------------------------------------------------------------

TEXT_SUFFIXES = {".txt", ".csv", ".tsv"}
CONFIG_KEYS = (
    "weight",
    "bias",
    "stride",
    "padding",
    "dilation",
    "groups",
    "pad_mode",
    "flip",
    "normalize",
    "description",
)


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
    named = None if spec.startswith((".", "/", "~")) else named_kernel(spec)
    if named is not None:
        return Filter(
            as_weight_array(named, f"kernel {spec!r}"), description=spec.strip(), source=spec
        )
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~name" for a user that does not exist
        path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    looks_like_path = "/" in spec or "\\" in spec or path.suffix.lower() in _FILE_SUFFIXES
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError:  # e.g. a long inline matrix is a name too long for the file system
        is_file = is_dir = False
    if is_file:
        return _load_file(path, chain)
    if is_dir:
        raise KernelError(
            f"kernel file {spec!r} is a directory, not a kernel file; name a file in it"
        )
    if looks_like_path and not _looks_inline(spec):
        raise KernelError(f"kernel file {spec!r} does not exist")
    if IMAGEMAGICK.match(spec):
        return Filter(as_weight_array(parse_imagemagick(spec), f"kernel {spec!r}"), source=spec)
    if _looks_inline(spec):
        return Filter(parse_inline(spec), source=spec)
    close = difflib.get_close_matches(spec.partition(":")[0].lower(), NAMED, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise KernelError(
        f"unknown kernel {spec!r}: {hint}not a kernel name (see 'convcli kernels'), not a "
        f"file, and not a matrix like '1 2 1; 2 4 2; 1 2 1'"
    )


_FILE_SUFFIXES = TEXT_SUFFIXES | {".mat", ".npy", ".npz", ".json", ".toml"}


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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise KernelError(f"{path}: cannot read it as text ({err})") from None
    if suffix == ".mat":
        matrix, offset = parse_vips_mat(text, str(path))
        # libvips adds the offset in the image's units; convcli's pixels are 0..1.
        bias = as_bias_array(offset / 255.0, f"{path}: offset") if offset else None
        return Filter(
            as_weight_array(matrix, str(path)), bias, source=str(path), files=(str(path),)
        )
    weight = as_weight_array(parse_text(text, str(path)), str(path))
    return Filter(weight, source=str(path), files=(str(path),))


def _load_config(path: Path, chain: tuple[Path, ...]) -> Filter:
    here = path.resolve()
    if here in chain:
        raise KernelError(
            f"{path}: its 'weight' leads back to this file ({' -> '.join(p.name for p in chain)} "
            f"-> {path.name}); give a matrix or another file"
        )
    data = read_config(path)
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise KernelError(
            f"{path}: unknown key {unknown[0]!r}; allowed keys are {', '.join(CONFIG_KEYS)}"
        )
    if "weight" not in data:
        raise KernelError(f"{path}: no 'weight' key; give a matrix, a kernel name or a file")
    weight_spec = data["weight"]
    bias = None
    files: tuple[str, ...] = (str(path),)
    if isinstance(weight_spec, str):
        inner = _load(weight_spec, path.parent, (*chain, here))
        weight, bias, files = inner.weight, inner.bias, (*files, *inner.files)
    else:
        weight = as_weight_array(weight_spec, f"{path}: weight")
    if "bias" in data:
        bias = as_bias_array(data["bias"], f"{path}: bias")
    options = {key: _option(path, key, data[key]) for key in CONFIG_KEYS[2:-1] if key in data}
    description = data.get("description", "")
    if not isinstance(description, str):
        raise KernelError(f"{path}: 'description' must be text, got {description!r}")
    if options.get("normalize") and abs(weight.sum()) < 1e-12:
        raise KernelError(
            f"{path}: 'normalize' is true but the weight sums to zero; drop 'normalize'"
        )
    return Filter(weight, bias, MappingProxyType(options), description, str(path), files)


def _option(path: Path, key: str, value: object) -> object:
    """Validate one configuration option; the message names the key and what it takes."""

    def bad(expected: str) -> KernelError:
        return KernelError(f"{path}: '{key}' must be {expected}, got {value!r}")

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
