"""Kernels: kernel specs and filter files, all ending in one :class:`Filter`, and the
shaping of a filter for an image (flip, normalize, the channel rule).

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

__all__ = [
    "NAMED",
    "Filter",
    "flip_kernel",
    "list_kernels",
    "load_filter",
    "normalize_kernel",
    "shape_for_channels",
    "weight_for_channels",
]


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


# Shaping a filter for an image ----------------------------------------------------------------


def flip_kernel(weight: np.ndarray) -> np.ndarray:
    """Rotate 180 degrees in the last two axes: cross-correlation becomes true convolution.

    Examples
    --------
    >>> flip_kernel(np.array([[1, 2], [3, 4]])).tolist()
    [[4, 3], [2, 1]]
    """
    return np.ascontiguousarray(weight[..., ::-1, ::-1])


def normalize_kernel(weight: np.ndarray) -> np.ndarray:
    """Divide each filter by its sum so that flat regions keep their value.

    A 2-D or 3-D weight is one filter; a 4-D weight has one filter per output channel.

    Examples
    --------
    >>> normalize_kernel(np.array([[1.0, 2.0, 1.0]])).tolist()
    [[0.25, 0.5, 0.25]]
    """
    per_filter = weight.ndim == 4
    sums = weight.sum(axis=tuple(range(1 if per_filter else 0, weight.ndim)), keepdims=True)
    if np.any(np.abs(sums) < 1e-12):
        raise KernelError(
            "the kernel sums to zero (an edge or gradient kernel); --normalize needs a kernel "
            "with a non-zero sum, drop --normalize"
        )
    return weight / sums


def weight_for_channels(
    f: Filter, channels: int, *, groups: int | None = None, transpose: bool = False
) -> tuple[np.ndarray, int]:
    """(4-D float32 weight, groups) for an image of ``channels``, by :func:`shape_for_channels`.

    Examples
    --------
    >>> w, g = weight_for_channels(load_filter("box:3"), 3)
    >>> w.shape, g
    ((3, 1, 3, 3), 3)
    """
    weight = f.weight
    shape, groups = shape_for_channels(
        weight.shape, channels, groups=groups, transpose=transpose, source=f.source
    )
    if weight.ndim == 2:
        weight = np.broadcast_to(weight, shape)
    return weight.reshape(shape).astype(np.float32), groups


def shape_for_channels(
    shape: tuple[int, ...],
    channels: int,
    *,
    groups: int | None = None,
    transpose: bool = False,
    source: str = "",
) -> tuple[tuple[int, int, int, int], int]:
    """The one shape rule: (4-D weight shape, groups) for a weight of ``shape`` on an
    image of ``channels``; used for real weights and by the shape calculator alike.

    - 2-D (Hf, Wf): every channel filtered on its own -> (C, 1, Hf, Wf), groups = C;
    - 3-D (C, Hf, Wf): all channels into one output channel -> (1, C, Hf, Wf), or
      (C, 1, Hf, Wf) for a transposed convolution;
    - 4-D (F, C/groups, Hf, Wf): as is; groups from the option or C / weight.shape[1].
      A transposed convolution's 4-D weight is (C, F/groups, Hf, Wf), PyTorch's
      layout; its groups come from the option only (default 1).

    Examples
    --------
    >>> shape_for_channels((3, 5, 5), 3), shape_for_channels((3, 5, 5), 3, transpose=True)
    (((1, 3, 5, 5), 1), ((3, 1, 5, 5), 1))
    """
    name = source or "weight"
    if len(shape) == 2:
        return (channels, 1, *shape), channels  # type: ignore[return-value]
    if len(shape) == 3:
        if shape[0] != channels:
            raise KernelError(
                f"kernel {name} is 3-D with {shape[0]} channels, but the image has "
                f"{channels}; a 3-D kernel needs one 2-D slice per image channel"
            )
        return ((channels, 1, *shape[1:]) if transpose else (1, *shape)), 1  # type: ignore[return-value]
    if len(shape) != 4:
        raise KernelError(f"kernel {name} has shape {tuple(shape)}; weights are 2-D, 3-D or 4-D")
    if transpose:
        if shape[0] != channels:
            raise KernelError(
                f"kernel {name} is a transposed weight (C, F/groups, Hf, Wf) with "
                f"C = {shape[0]}, but the image has {channels} channels"
            )
        groups = 1 if groups is None else groups
        if channels % groups:
            raise KernelError(f"groups={groups} does not divide the image's {channels} channels")
        return tuple(shape), groups  # type: ignore[return-value]
    per_group = shape[1]
    inferred = groups is None
    if groups is None:
        if channels % per_group:
            raise KernelError(
                f"kernel {name} takes {per_group} channels per group, which does not divide "
                f"the image's {channels} channels"
            )
        groups = channels // per_group
    if per_group * groups != channels:
        raise KernelError(
            f"kernel {name} takes {per_group} channels x groups={groups} = "
            f"{per_group * groups}, but the image has {channels} channels"
        )
    if shape[0] % groups:
        why = (
            f"it takes {per_group} channel(s) per group, so the image's {channels} channels "
            f"make groups={groups}"
            if inferred
            else f"groups={groups} was asked for"
        )
        raise KernelError(
            f"kernel {name} has {shape[0]} filters, not divisible by groups={groups}: {why}; "
            f"give a (F, {channels}, Hf, Wf) weight for a full convolution of these channels"
        )
    return tuple(shape), groups  # type: ignore[return-value]
