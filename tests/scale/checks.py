"""What "equal to the in-memory function" means for a blocked result."""

from __future__ import annotations

import numpy as np

from tests.conftest import term_scale


def assert_matches(got, expected, *, exact: bool = False, terms=()) -> None:
    """``got`` equals ``expected`` bit for bit (``exact``), or within 1e-6 of a scale with
    NaN, +Inf and -Inf in exactly the same places. The scale is the largest finite
    magnitude of ``expected``, or that of one term of the sums it is made of if larger
    (``term_scale(*terms)`` over the finite values of ``terms``, e.g. ``(x, weight)``):
    float32 rounding is relative to the terms, and an output whose terms cancel is
    much smaller than they are."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(got, expected)  # NaN == NaN here
        return
    for special in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(special(got), special(expected))
    finite = np.isfinite(expected)
    terms = term_scale(*(np.asarray(t)[np.isfinite(t)] for t in terms)) if terms else 0.0
    scale = max(float(np.max(np.abs(expected[finite]), initial=0.0)), terms) or 1.0
    err = float(np.max(np.abs(got[finite] - expected[finite]), initial=0.0))
    assert err <= 1e-6 * scale, f"max error {err:.3g} > 1e-6 x {scale:.3g}"
