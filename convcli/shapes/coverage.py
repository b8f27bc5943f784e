"""Input rows and columns that no window reads: a stride that does not fit the kernel
drops data silently, and ``convcli shape`` says which (by arithmetic, not by
enumerating the windows, so that huge sizes cost nothing).
"""

from __future__ import annotations

import math

from convcli.conv.geometry import ConvGeometry

_SHOWN = 6  # unread rows named in a warning
_MAX_RESIDUES = 1 << 16  # past this the coverage is not analysed (see unread_rows)


def unread_rows(
    size: int, before: int, k: int, s: int, d: int, out: int
) -> tuple[int, list[int]] | None:
    """(how many, the first few) of the rows ``0 <= p < size`` that no window reads.

    Window ``o`` tap ``i`` reads ``p = o*s + i*d - before`` (``o < out``, ``i < k``).
    Arithmetic, not enumeration: with ``g = gcd(s, d)`` only rows with ``p + before``
    a multiple of ``g`` can be read; dividing by ``g`` leaves ``q = i*a + t*b`` with
    ``a``, ``b`` coprime, one generator ``i < n`` and the other a run ``t < length``.
    Grouped by ``q mod b``, generator values ``i0, i0 + b, ...`` start runs ``a``
    apart, so each residue's reads are evenly spaced intervals, counted with floor
    divisions. The work is ``min(k, s/g, out, d/g)`` residues (the roles of stride
    and dilation swap to take the smaller); None past ``_MAX_RESIDUES`` of them.
    """
    g = math.gcd(s, d)
    lo, hi = before, before + size  # q range before dividing by g
    s1, d1 = s // g, d // g
    # q/g = i*d1 + o*s1: residues mod s1 with taps i (runs of `out`), or mod d1 with
    # windows o (runs of k).
    if min(k, s1) <= min(out, d1):
        a, b, n, length = d1, s1, k, out
    else:
        a, b, n, length = s1, d1, out, k
    residues = min(n, b)
    if residues > _MAX_RESIDUES:
        return None
    lo1, hi1 = -(-lo // g), -(-hi // g)  # multiples of g in [lo, hi), divided by g
    read = 0
    first: list[int] = []
    if g > 1:  # rows whose q is not a multiple of g: never read
        p = 0
        while len(first) < _SHOWN and p < size:
            if (p + before) % g:
                first.append(p)
            p += 1
    if residues < b:  # residues no generator value reaches: never read
        hit = {i0 * a % b for i0 in range(residues)}
        r0, step, free = lo1 % b, 0, []
        while len(free) < _SHOWN and step < b:  # at most residues + _SHOWN steps
            if (r0 + step) % b not in hit:
                free.append(step)
            step += 1
        for offset in free:
            first += [(q * g - before) for q in range(lo1 + offset, hi1, b)[:_SHOWN]]
    for i0 in range(residues):
        r, start = i0 * a % b, i0 * a // b
        count = -(-(n - i0) // b)  # i0, i0 + b, ... below n
        t0, t1 = -(-(lo1 - r) // b), -(-(hi1 - r) // b)
        if t1 <= t0:
            continue
        read += _covered(t1, start, a, count, length) - _covered(t0, start, a, count, length)
        t = t0
        for _ in range(_SHOWN):
            t = _first_gap(t, start, a, count, length)
            if t >= t1:
                break
            first.append((r + b * t) * g - before)
            t += 1
    return size - read, sorted(first)[:_SHOWN]


def _covered(x: int, start: int, a: int, count: int, length: int) -> int:
    """How many t < x lie in the runs [start + m*a, start + m*a + length), m < count."""
    if length >= a:  # the runs touch: one interval
        return min(max(x - start, 0), (count - 1) * a + length)
    whole = min(max((x - start - length) // a + 1, 0), count)
    partial = 0
    if whole < count:
        partial = min(max(x - (start + whole * a), 0), length)
    return whole * length + partial


def _first_gap(t: int, start: int, a: int, count: int, length: int) -> int:
    """The first t' >= t outside the runs of :func:`_covered`."""
    if t < start:
        return t
    if length >= a:  # one interval
        return max(t, start + (count - 1) * a + length)
    m = (t - start) // a
    end = start + m * a + length
    return end if m < count and t < end else t


def coverage_warnings(geo: ConvGeometry) -> list[str]:
    """Say which input rows/columns the windows never read (the stride does not fit)."""
    notes = []
    for axis, (rows, word) in enumerate((("rows", "H"), ("columns", "W"))):
        found = unread_rows(
            geo.input_shape[2 + axis],
            geo.padding[2 * axis],
            geo.kernel_size[axis],
            geo.stride[axis],
            geo.dilation[axis],
            geo.output_shape[2 + axis],
        )
        if not found or not found[0]:
            continue
        missed, shown_rows = found
        shown = ", ".join(map(str, shown_rows)) + (" ..." if missed > len(shown_rows) else "")
        notes.append(
            f"{missed} input {rows} ({word} index {shown}) are never read: stride "
            f"{geo.stride[axis]} with kernel {geo.kernel_size[axis]} (dilation "
            f"{geo.dilation[axis]}) does not fit; change the padding or stride"
        )
    return notes
