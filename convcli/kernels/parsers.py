"""Parsers for the written forms of a filter: inline matrices, text and CSV files,
libvips ``.mat`` files, ImageMagick kernel strings and configuration files
(JSON/TOML); NumPy files are read by :func:`convcli.kernels.numpy_files.load_numpy`. Each returns
plain arrays and raises :class:`~convcli.errors.KernelError` naming the file, the
line and the fix; :func:`convcli.kernels.values.as_weight_array` is the one check of
their values.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from convcli.errors import KernelError, shown_name
from convcli.kernels.limits import MAX_TAPS, MAX_TEXT_BYTES, check_text_size, check_weight_shape
from convcli.kernels.values import as_number, as_weight_array, excerpt

_SPLIT = re.compile(r"[\s,;]+")
# ImageMagick's user-defined kernel: "WxH[+X+Y][@><]: values" (AcquireKernelInfo).
IMAGEMAGICK = re.compile(
    r"^\s*(\d+)(?:x(\d+))?(?:([+-]\d+)([+-]\d+))?\s*([@<>]*)\s*:(.*)$", re.S | re.I
)


def _rows_to_matrix(rows: list[tuple[int | str, list[float]]], source: str) -> np.ndarray:
    """Rows (line number or label, values) -> 2-D array, or an error naming the ragged row."""
    width = len(rows[0][1])
    for line, values in rows:
        if len(values) != width:
            raise KernelError(
                f"{source}, {_where(line)}: {len(values)} values, but the first row has "
                f"{width}; every row of a kernel needs the same number of values"
            )
    return np.array([values for _, values in rows], dtype=np.float64)


def _where(line: int | str) -> str:
    return f"line {line}" if isinstance(line, int) else line


# A European (decimal-comma) CSV field: "0,5", "-1,25", "2,5E-3".
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$")


def _check_decimal_commas(lines: list[tuple[int, str]], source: str) -> None:
    """Refuse what looks like a spreadsheet saved with decimal commas (``0,5;1;0,5``).

    Such a file uses ``;`` between values and ``,`` inside numbers; read by convcli's
    rule (``;`` ends a row, ``,`` separates values) it would be a different kernel. A
    line counts as such when it holds two or more ``;`` fields, each a single token with
    at most one comma, at least one of them like ``0,5``. The file is refused when such a
    line mixes fields with and without a comma (``0,5;1``), or when two or more lines are
    like that (one row per line, as spreadsheets save). One line of comma pairs alone
    (``1,2;3,4``) stays the 2x2 matrix it also is in MATLAB's notation.
    """
    for number, line in lines:
        _check_spaced_decimal_commas(number, line, source)
    found: list[tuple[int, str]] = []
    for number, line in lines:
        fields = [f.strip() for f in line.split(";")]
        if len(fields) < 2 or not all(fields):
            continue
        if any(len(f.split()) != 1 or f.count(",") > 1 for f in fields):
            continue
        if not any(_DECIMAL_COMMA.match(f) for f in fields):
            continue
        found.append((number, line))
        mixed = len({f.count(",") for f in fields}) > 1
        if mixed or len(found) > 1:
            number, line = found[0]  # the first line that looks like it
            example = next(f for f in line.split(";") if _DECIMAL_COMMA.match(f.strip()))
            example = example.strip()
            raise KernelError(
                f"{source}, line {number}: looks like a spreadsheet saved with decimal "
                f"commas ({excerpt(example)}) and ';' between values; convcli reads ';' as the "
                f"end of a row and ',' between values, so save it with decimal points "
                f"({example.replace(',', '.')}) and commas, spaces or tabs between values"
            )


def _check_spaced_decimal_commas(number: int, line: str, source: str) -> None:
    """Refuse a line of values split by tabs or spaces with commas inside them
    (``0,25<TAB>0,5``: a spreadsheet's TSV with decimal commas), which convcli's rule
    would read as twice the values (0, 25, 0, 5). A comma counts as inside a value when
    no space touches it and a digit is on each side; ``1, 2,3`` stays three values."""
    for segment in line.split(";"):
        tokens = segment.split()
        if len(tokens) < 2 or any(t.startswith(",") or t.endswith(",") for t in tokens):
            continue
        inside = [t for t in tokens if _DECIMAL_COMMA.match(t)]
        if inside:
            example = inside[0]
            raise KernelError(
                f"{source}, line {number}: looks like numbers written with decimal commas "
                f"({excerpt(example)}) and tabs or spaces between values; convcli reads ',' "
                f"between values, so save it with decimal points ({example.replace(',', '.')})"
            )


def parse_text(text: str, source: str) -> np.ndarray:
    """Numbers split by whitespace, commas or tabs; a newline or ``;`` ends a row (as
    in inline matrices: ``1 2 1; 2 4 2; 1 2 1`` is 3x3 in a file too); ``#`` comments;
    a blank line (or an empty ``;;`` row) separates 2-D blocks, which stack along a new
    leading axis. A ``;`` or ``,`` at the end of a line changes nothing. Files that look
    saved with decimal commas (``0,5;1;0,5``, ``0,5<TAB>1<TAB>0,5``) are refused rather
    than misread.

    Examples
    --------
    >>> parse_text("1, 2, 1,\\n2 4 2  # middle\\n1\\t2\\t1\\n", "k.csv").shape
    (3, 3)
    >>> parse_text("1 2 1; 2 4 2; 1 2 1", "k.txt").shape
    (3, 3)
    >>> parse_text("1 0\\n0 1\\n\\n0 1\\n1 0\\n", "k.txt").shape
    (2, 2, 2)
    """
    text = text.lstrip("\ufeff")
    lines = [
        (number, raw.split("#", 1)[0].strip().strip(",;").strip())
        for number, raw in enumerate(text.splitlines(), start=1)
    ]
    _check_decimal_commas(lines, source)
    # Each block becomes an array when it ends: Python floats take four times the room.
    matrices: list[tuple[int | str, np.ndarray]] = []
    block: list[tuple[int | str, list[float]]] = []

    def end_block() -> None:
        if block:
            matrices.append((block[0][0], _rows_to_matrix(block, source)))
            block.clear()

    for number, line in lines:
        segments = line.split(";")
        for index, segment in enumerate(segments, start=1):
            segment = segment.strip().strip(",").strip()
            if not segment:  # a blank line, or an empty ';;' row: the next block
                end_block()
                continue
            where: int | str = (
                number if len(segments) == 1 else f"line {number}, row {index} (rows end at ';')"
            )
            block.append((where, _row(segment, f"{source}, {_where(where)}")))
            if len(block) > MAX_TAPS:
                raise KernelError(
                    f"{source}, {_where(where)}: a block of more than {MAX_TAPS} rows; convcli "
                    f"takes at most {MAX_TAPS} taps a side, as its named kernels"
                )
    end_block()
    if not matrices:
        raise KernelError(f"{source}: no numbers found; write the kernel's rows, one per line")
    if len(matrices) == 1:
        return matrices[0][1]
    first = matrices[0][1].shape
    for line, matrix in matrices:
        if matrix.shape != first:
            raise KernelError(
                f"{source}, {_where(line)}: block of {matrix.shape[0]}x{matrix.shape[1]}, "
                f"but the first block is {first[0]}x{first[1]}; stacked blocks need one shape"
            )
    check_weight_shape((len(matrices), *first), source)
    return np.stack([matrix for _, matrix in matrices])


_TOKEN = re.compile(r"[^\s,;]+")


def _row(segment: str, where: str) -> list[float]:
    """The numbers of one row, at most :data:`MAX_TAPS` of them (never all the tokens of a
    line of millions)."""
    tokens = [m.group() for m in itertools.islice(_TOKEN.finditer(segment), MAX_TAPS + 1)]
    if len(tokens) > MAX_TAPS:
        raise KernelError(
            f"{where}: a row of more than {MAX_TAPS} values; convcli takes at most {MAX_TAPS} "
            f"taps a side, as its named kernels"
        )
    return [as_number(token, where) for token in tokens]


def parse_inline(spec: str) -> np.ndarray:
    """An inline matrix: ``"1 2 1; 2 4 2; 1 2 1"`` (rows by ``;`` or newline) or JSON.

    Examples
    --------
    >>> float(parse_inline("1 2 1; 2 4 2; 1 2 1").sum())
    16.0
    >>> parse_inline("[[0, 1], [1, 0]]").shape
    (2, 2)
    """
    if spec.lstrip().startswith("["):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as err:
            raise KernelError(f"kernel {spec!r} is not valid JSON: {err.msg}") from None
        except RecursionError:
            raise KernelError(
                f"kernel {spec[:40]!r}...: nested too deeply; a kernel has 2 to 4 dimensions"
            ) from None
        return as_weight_array(data, f"kernel {spec!r}")
    return as_weight_array(
        parse_text(spec.replace(";", "\n"), f"kernel {spec!r}"), f"kernel {spec!r}"
    )


def parse_vips_mat(text: str, source: str) -> tuple[np.ndarray, float]:
    """A libvips matrix file: header ``W H [scale [offset]]``, then H rows of W numbers.

    Returns the matrix divided by ``scale`` and the ``offset`` (in the image's units).
    """
    lines = [
        (n, line.split("#", 1)[0].strip())
        for n, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1)
    ]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise KernelError(f"{source}: empty matrix file; the first line is 'W H [scale [offset]]'")
    n0, header = lines[0]
    fields = [as_number(t, f"{source}, line {n0}") for t in _SPLIT.split(header) if t]
    if not 2 <= len(fields) <= 4 or fields[0] != int(fields[0]) or fields[1] != int(fields[1]):
        raise KernelError(
            f"{source}, line {n0}: the header must be 'W H [scale [offset]]', got "
            f"{excerpt(header, 40)}"
        )
    width, height = int(fields[0]), int(fields[1])
    scale = fields[2] if len(fields) > 2 else 1.0
    offset = fields[3] if len(fields) > 3 else 0.0
    if width < 1 or height < 1 or scale == 0:
        raise KernelError(f"{source}, line {n0}: size must be positive and scale non-zero")
    check_weight_shape((height, width), f"{source}, line {n0}")
    rows = [(n, _row(line, f"{source}, line {n}")) for n, line in lines[1:]]
    if len(rows) != height:
        raise KernelError(f"{source}: the header says {height} rows, the file has {len(rows)}")
    matrix = _rows_to_matrix(rows, source)
    if matrix.shape[1] != width:
        raise KernelError(
            f"{source}: the header says {width} columns, the rows have {matrix.shape[1]}"
        )
    with np.errstate(over="ignore"):  # a tiny scale: infinity, refused by as_weight_array
        return matrix / scale, offset


def parse_imagemagick(spec: str) -> np.ndarray:
    """An ImageMagick kernel string ``WxH[+X+Y]: v,v,v ...`` (or ``N:`` for NxN).

    ``nan`` or ``-`` marks a position that is not part of the neighbourhood; a
    convolution skips it, so it is 0 here (at least one value must be a number).
    ``+X+Y`` is the origin counted from the top left; convcli centres kernels
    (``(W-1)//2``, ``(H-1)//2``, ImageMagick's default), so another origin is refused,
    as are the rotation flags ``@ < >`` and ``;``-separated kernel lists, which make
    several kernels.

    Examples
    --------
    >>> float(parse_imagemagick("3x3: 1,2,1 2,4,2 1,2,1").sum())
    16.0
    >>> parse_imagemagick("3x3+1+1: -,1,- 1,1,1 -,1,-").tolist()
    [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    """
    match = IMAGEMAGICK.match(spec)
    if not match:
        raise KernelError(f"kernel {spec!r} is not an ImageMagick kernel 'WxH: values'")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if width < 1 or height < 1:
        raise KernelError(f"kernel {spec!r}: size {width}x{height}; width and height must be >= 1")
    if match.group(3) is not None:
        x, y = int(match.group(3)), int(match.group(4))
        centre = ((width - 1) // 2, (height - 1) // 2)
        if not (0 <= x < width and 0 <= y < height):
            raise KernelError(
                f"kernel {spec!r}: origin {match.group(3)}{match.group(4)} is outside the "
                f"{width}x{height} kernel; drop it (convcli centres kernels)"
            )
        if (x, y) != centre:
            raise KernelError(
                f"kernel {spec!r}: origin +{x}+{y} is off-centre; convcli centres kernels "
                f"(+{centre[0]}+{centre[1]} here), so pad the matrix to move the centre, or "
                f"drop the origin"
            )
    if match.group(5):
        raise KernelError(
            f"kernel {spec!r}: the rotation flag {match.group(5)!r} makes a list of rotated "
            f"kernels, which convcli cannot apply as one; drop it and give each rotation as "
            f"its own -k"
        )
    text = match.group(6)
    if ":" in text:
        raise KernelError(
            f"kernel {spec!r}: a ';'-separated list of kernels is not supported; give each "
            f"kernel as its own -k"
        )
    values = [
        math.nan if token.lower() in ("nan", "-") else as_number(token, f"kernel {spec!r}")
        for token in _SPLIT.split(text)
        if token
    ]
    if len(values) != width * height:
        raise KernelError(
            f"kernel {spec!r}: {width}x{height} needs {width * height} values, got {len(values)}"
        )
    matrix = np.array(values).reshape(height, width)
    if np.isnan(matrix).all():
        raise KernelError(
            f"kernel {spec!r}: every value is 'nan' or '-' (not part of the kernel); at least "
            f"one must be a number"
        )
    return np.nan_to_num(matrix, nan=0.0)


_TOO_DEEP = "{path}: nested too deeply; a kernel has 2 to 4 dimensions"


def _unique_keys(path: Path):
    """A JSON object hook that refuses a key given twice, as TOML does (``json`` would
    silently keep the last value: a filter file that says two things is a mistake)."""

    def pairs_to_dict(pairs: list[tuple[str, object]]) -> dict:
        data: dict = {}
        for key, value in pairs:
            if key in data:
                raise KernelError(
                    f"{shown_name(path)}: the key {key!r} is given twice; keep one of its values"
                )
            data[key] = value
        return data

    return pairs_to_dict


def read_text(path: Path) -> str:
    """A text filter file's text (UTF-8, a byte-order mark dropped), refused from its
    size past :data:`~convcli.kernels.limits.MAX_TEXT_BYTES` before a byte is read."""
    try:
        with path.open("rb") as stream:
            check_text_size(os.fstat(stream.fileno()).st_size, shown_name(path))
            return stream.read(MAX_TEXT_BYTES + 1).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise KernelError(f"{shown_name(path)}: cannot read it as text ({err})") from None


def read_config(path: Path) -> dict:
    """The mapping in a ``.json`` or ``.toml`` filter configuration file.

    A ``.json`` file that holds a bare array (``[[1, 2, 1], [2, 4, 2], [1, 2, 1]]``) is
    read as ``{"weight": array}``; a TOML file is always a table.
    """
    text = read_text(path)
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise KernelError(f"{shown_name(path)}: not valid TOML ({err})") from None
        except RecursionError:  # tomllib parses arrays and tables recursively
            raise KernelError(_TOO_DEEP.format(path=shown_name(path))) from None
    else:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys(path))
        except json.JSONDecodeError as err:
            raise KernelError(
                f"{shown_name(path)}, line {err.lineno}: not valid JSON ({err.msg})"
            ) from None
        except RecursionError:
            raise KernelError(_TOO_DEEP.format(path=shown_name(path))) from None
    if isinstance(data, list):  # a bare JSON array is the weight, as it is inline
        return {"weight": data}
    if not isinstance(data, dict):
        kind = {bool: "true/false", str: "string", type(None): "null"}.get(type(data), "number")
        raise KernelError(
            f"{shown_name(path)}: "
            f"holds a single JSON {kind}; a filter file holds an array of numbers "
            f"or an object with a 'weight' key"
        )
    return data
