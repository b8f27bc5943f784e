"""What "equal to the in-memory function" means for a blocked result."""

from __future__ import annotations

import numpy as np


def assert_matches(got, expected, *, exact: bool = False) -> None:
    """``got`` equals ``expected`` bit for bit (``exact``), or within 1e-6 of its largest
    finite magnitude with NaN, +Inf and -Inf in exactly the same places."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(got, expected)  # NaN == NaN here
        return
    for special in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(special(got), special(expected))
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]), initial=0.0)) or 1.0
    err = float(np.max(np.abs(got[finite] - expected[finite]), initial=0.0))
    assert err <= 1e-6 * scale, f"max error {err:.3g} > 1e-6 x {scale:.3g}"
