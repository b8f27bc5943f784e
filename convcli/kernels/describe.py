"""What ``convcli kernels SPEC`` prints: a filter's matrix (large ones summarized), its
shape and sum, its bias, and the options a filter file sets.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.filters import Filter
from convcli.kernels.loader import (
    CONFIG_KEYS,
    load_filter,  # noqa: F401 - the examples use it
)
from convcli.kernels.shaping import normalize_kernel

SHOWN_FULL = 15  # rows/columns of a slice shown in full; larger ones are summarized
SHOWN_SLICES = 8  # 2-D slices of a 3-D/4-D weight shown in full; more are summarized


def _shown_indices(n: int) -> list[int | None]:
    """Indices of one axis to show: all up to SHOWN_FULL, else the first and last three and
    the centre (two for an even size), None where values are left out."""
    if n <= SHOWN_FULL:
        return list(range(n))
    centre = [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]
    return [0, 1, 2, None, *centre, None, n - 3, n - 2, n - 1]


def _ranges(indices: list[int | None]) -> str:
    """[0, 1, 2, None, 500, None, 998, 999, 1000] -> '0-2, 500, 998-1000'."""
    runs: list[list[int]] = []
    for i in indices:
        if i is not None and runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        elif i is not None:
            runs.append([i])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _matrix_lines(matrix: np.ndarray) -> tuple[list[str], str]:
    """The rows of a 2-D slice as aligned text (large ones summarized), and what was shown."""
    rows, cols = _shown_indices(matrix.shape[0]), _shown_indices(matrix.shape[1])
    cells = [
        ["..." if r is None or c is None else f"{matrix[r, c]:.6g}" for c in cols] for r in rows
    ]
    width = max(len(c) for row in cells for c in row)
    lines = [" ".join(c.rjust(width) for c in row) for row in cells]
    note = ""
    if None in rows or None in cols:
        note = f"showing rows {_ranges(rows)} and columns {_ranges(cols)}"
    return lines, note


def _option_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def describe_filter(f: Filter) -> str:
    """The matrix (per 2-D slice; large ones summarized with ``...``: the first and last
    rows and columns and the centre), its shape and sum, the options a filter file sets
    and, with ``normalize``, the sum after normalizing: what ``convcli kernels SPEC``
    prints. A filter bank shows each of its kernels and how their responses combine.

    Examples
    --------
    >>> print(describe_filter(load_filter("1 2 1")))
    1 2 1
    shape: 1x3   sum: 4
    >>> print(describe_filter(load_filter("sobel")).splitlines()[-2])
    bank: 2 kernels of 3x3 (sums 0, 0), combined by magnitude sqrt(r1^2 + r2^2)
    """
    lines = []
    for number, weight in enumerate(f.bank, start=1):
        lines.append(f"kernel {number} of {len(f.bank)}:")
        lines.extend(_weight_lines(weight))
    if not f.bank:
        lines.extend(_weight_lines(f.weight if f.offcentre is None else f.offcentre[0]))
    shape = "x".join(str(d) for d in f.weight.shape)
    if f.offcentre is not None:  # shown as its source has it; the weight centres it
        (x, y), shown = f.offcentre[1], "x".join(map(str, f.offcentre[0].shape))
        shape = f"{shown}, origin +{x}+{y} (column, row), applied as the {shape} centred on it"
    sums = ", ".join(f"{_sum(w):.6g}" for w in f.weights)
    if f.bank:
        term = "|r{}|" if f.combine == "abs-sum" else "r{}^2"
        terms = " + ".join(term.format(n) for n in range(1, min(len(f.bank), 3) + 1))
        terms += " + ..." if len(f.bank) > 3 else ""
        rule = terms if f.combine == "abs-sum" else f"sqrt({terms})"
        summary = (
            f"bank: {len(f.bank)} kernels of {shape} (sums {sums}), combined by {f.combine} {rule}"
        )
    else:
        summary = f"shape: {shape}   sum: {sums}"
    if f.bias is not None:
        summary += f"   bias: {', '.join(f'{b:.6g}' for b in f.bias)}"
    lines.append(summary)
    if f.options:
        shown = ", ".join(
            f"{key} {_option_text(f.options[key])}" for key in CONFIG_KEYS if key in f.options
        )
        lines.append(f"options: {shown}")
    if f.options.get("normalize") and not f.bank:
        lines.append(_normalized_text(f.weight))
    if f.description:
        lines.append(f"description: {f.description}")
    return "\n".join(lines)


def _sum(weight: np.ndarray) -> float:
    total = float(weight.sum())
    if abs(total) <= 1e-12 * float(np.abs(weight).sum()):
        total = 0.0  # rounding left over from a zero-sum kernel: 4e-17 would say "not zero"
    return total


def _weight_lines(weight: np.ndarray) -> list[str]:
    """One weight's matrix, per 2-D slice of a 3-D/4-D weight; large ones summarized."""
    slices = (
        [((), weight)]
        if weight.ndim == 2
        else list((index, weight[index]) for index in np.ndindex(weight.shape[:-2]))
    )
    if len(slices) > SHOWN_SLICES:
        hidden = len(slices) - 6
        slices = [*slices[:3], None, *slices[-3:]]
    lines, note = [], ""
    for item in slices:
        if item is None:
            lines.append(f"... ({hidden} more 2-D slices)")
            continue
        index, matrix = item
        if index:
            lines.append(f"[{', '.join(str(i) for i in index)}]")
        rows, note = _matrix_lines(matrix)
        lines.extend(rows)
    if note:
        lines.append(f"({note})")
    return lines


def _normalized_text(weight: np.ndarray) -> str:
    """The sum after 'normalize' (per filter for a 4-D weight), as the filter will run."""
    try:
        normalized = normalize_kernel(weight)
    except KernelError:
        return "normalized sum: none (a filter sums to zero; 'normalize' will be refused)"
    if weight.ndim != 4:
        return (
            f"normalized sum: {normalized.sum():.6g} (the weight divided by {weight.sum():.6g}; "
            f"upsample then scales it to stride_h*stride_w)"
        )
    sums = normalized.sum(axis=(1, 2, 3))
    shown = ", ".join(f"{v:.6g}" for v in sums[:8]) + (", ..." if len(sums) > 8 else "")
    return f"normalized sums: {shown} (each of the {len(sums)} filters divided by its own sum)"
