"""The values a filter is made of, read one way wherever they come from: a number as
written (ASCII decimals: no ``_``, ``inf`` or ``nan``), and arrays of them as weights and
biases, finite in float32 and within the kernel limits. The parsers of the written forms
(:mod:`convcli.kernels.parsers`), NumPy files, named kernels and ImageMagick's all end here.
"""

from __future__ import annotations

import math
import re

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.limits import check_bias_shape, check_weight_shape

# A number as written in a kernel or an option: ASCII digits, an optional sign, point and
# exponent. Python's float() also takes "1_000", "inf", "nan", " 3 " and other scripts'
# digits ("٣"), none of which a kernel file or ImageMagick means as a number.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]+")


def plain_number(text: str) -> float | None:
    """The finite value of ``text`` written as a plain decimal number, else None.

    Examples
    --------
    >>> plain_number("-2.5e3"), plain_number("1_0"), plain_number("1e400"), plain_number("nan")
    (-2500.0, None, None, None)
    """
    if not NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def plain_integer(text: str) -> int | None:
    """The value of ``text`` written as a plain decimal integer (no ``_``), else None.

    Examples
    --------
    >>> plain_integer("-12"), plain_integer("3_0"), plain_integer("2.0")
    (-12, None, None)
    """
    return int(text) if INTEGER.fullmatch(text) else None


def as_number(token: str, where: str) -> float:
    """``token`` as a finite number, or a KernelError naming ``where``."""
    value = plain_number(token)
    if value is None:
        if NUMBER.fullmatch(token) or token.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise KernelError(
                f"{where}: {excerpt(token)} is not a finite number; kernels need real values"
            )
        raise KernelError(f"{where}: {excerpt(token)} is not a number")
    return value


def excerpt(text: str, limit: int = 16) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters: a file's bad token may
    be a whole line of something that is no kernel (``-k /etc/passwd``)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _plain_numbers(data: object, where: str, what: str) -> None:
    """Refuse booleans, strings and other non-numbers in nested lists (JSON/TOML), which
    NumPy would otherwise turn into numbers (``true`` -> 1.0, ``"1"`` -> 1.0), and lists
    nested deeper than any kernel (NumPy would call a 500-deep list "not rectangular")."""
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple)):
            if depth >= 4:
                raise KernelError(
                    f"{where}: nested too deeply (more than 4 levels); a kernel has 2 to 4 "
                    f"dimensions"
                )
            stack.extend((value, depth + 1) for value in reversed(item))
        elif isinstance(item, bool) or not isinstance(item, (int, float, np.number)):
            shown = repr(item) if not isinstance(item, bool) else str(item).lower()
            raise KernelError(
                f"{where}: the {what} holds {shown} ({type(item).__name__}); it must hold "
                f"numbers only"
            )


def _to_float64(data: object, where: str, what: str, error: str) -> np.ndarray:
    if isinstance(data, (list, tuple, bool, str)):
        _plain_numbers(data, where, what)
    try:
        return np.array(data, dtype=np.float64)
    except OverflowError:  # an integer past float64 (JSON/TOML allow any length)
        raise KernelError(
            f"{where}: a {what} value is too large; convcli computes in float32 (at most "
            f"{FLOAT32_MAX:.6g} in magnitude)"
        ) from None
    except (ValueError, TypeError):
        raise KernelError(f"{where}: {error}") from None


def check_float32(array: np.ndarray, where: str, what: str = "weight") -> np.ndarray:
    """Refuse NaN, infinity and values that would overflow float32, naming ``where``.

    Images, kernels and biases are float32 inside convcli; 1e308 would silently become
    infinity there (and NumPy would warn "overflow encountered in cast").
    """
    if not np.isfinite(array).all():
        raise KernelError(f"{where}: {what} contains NaN or infinite values")
    too_big = np.abs(array) > FLOAT32_MAX
    if too_big.any():
        value = float(array[too_big].flat[0])
        raise KernelError(
            f"{where}: {what} value {value:g} is too large; convcli computes in float32 "
            f"(at most {FLOAT32_MAX:.6g} in magnitude)"
        )
    return array


def as_weight_array(data: object, where: str) -> np.ndarray:
    """Nested lists of numbers (2-D to 4-D) -> float64 array, or a clear error.

    Every filter source ends here: the values must be numbers (not booleans or text)
    and finite in float32.
    """
    array = _to_float64(
        data,
        where,
        "weight",
        "not a rectangular array of numbers (rows of different lengths, or text)",
    )
    if array.ndim == 1 and array.size:
        array = array[None]
    if array.ndim not in (2, 3, 4) or array.size == 0:
        raise KernelError(f"{where}: a kernel needs 2 to 4 dimensions, got shape {array.shape}")
    check_weight_shape(array.shape, where)
    return check_float32(array, where)


def as_bias_array(data: object, where: str) -> np.ndarray:
    """A bias: one number or a flat list of numbers, finite in float32."""
    bias = np.atleast_1d(
        _to_float64(data, where, "bias", "bias must be a number or a list of numbers")
    )
    if bias.ndim != 1 or bias.size == 0:
        raise KernelError(
            f"{where}: bias must be a number or a flat, non-empty list of finite numbers, "
            f"got {data!r}"
        )
    check_bias_shape(bias.shape, where)
    return check_float32(bias, where, "bias")
