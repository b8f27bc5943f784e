"""The rows no window reads, by arithmetic, against enumerating every window's taps."""

from __future__ import annotations

import numpy as np

from convcli.shapes.coverage import unread_rows


def _brute_unread(size, before, k, s, d, out):
    read = {o * s + i * d - before for o in range(out) for i in range(k)}
    return [p for p in range(size) if p not in read]


def test_coverage_arithmetic_matches_enumeration():
    rng = np.random.default_rng(7)
    for _ in range(3000):
        size, k, s, d = (int(v) for v in rng.integers(1, [40, 6, 9, 7]))
        before, after = (int(v) for v in rng.integers(0, 8, 2))
        span = (k - 1) * d + 1
        if size + before + after < span:
            continue
        out = (size + before + after - span) // s + 1
        missed = _brute_unread(size, before, k, s, d, out)
        assert unread_rows(size, before, k, s, d, out) == (len(missed), missed[:6]), (
            size,
            before,
            k,
            s,
            d,
            out,
        )
