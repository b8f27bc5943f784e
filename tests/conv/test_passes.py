"""Tap grouping and the elementwise passes of the taps and separable engines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convcli.conv.engines.passes import accumulate, passes_cost, tap_groups

# Small integers and their negatives, with repeats, zeros, ones and minus ones: the cases
# the grouping treats apart.
weights = arrays(np.float64, st.integers(1, 12), elements=st.sampled_from([0, 1, -1, 2, -3, 0.5]))


@given(w=weights)
def test_groups_hold_every_nonzero_tap_once_under_its_own_weight(w):
    groups = tap_groups(w)
    taps = [t for g in groups for t in g.taps]
    assert sorted(taps) == [t for t in range(w.size) if w[t] != 0]
    for g in groups:
        assert all(w[t] == g.weight for t in g.taps)
        assert g.kind == (1 if g.weight == 1 else -1 if g.weight == -1 else 0)
    assert len({float(g.weight) for g in groups}) == len(groups)


@given(w=weights, seed=st.integers(0, 2**32 - 1))
def test_accumulate_equals_the_plain_weighted_sum(w, seed):
    rng = np.random.default_rng(seed)
    views = [rng.standard_normal((2, 5)) for _ in range(w.size)]
    out = np.full((2, 5), np.nan)
    scratch: dict[str, np.ndarray] = {}

    def buffer(slot, shape):
        return scratch.setdefault(slot, np.empty(shape))

    accumulate(out, views, tap_groups(w), buffer)
    expected = sum((w[t] * views[t] for t in range(w.size)), np.zeros((2, 5)))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_accumulate_keeps_nan_of_a_tap_with_a_nonzero_weight():
    views = [np.array([np.nan, 1.0]), np.array([2.0, 2.0])]
    out = np.empty(2)
    accumulate(out, views, tap_groups(np.array([1.0, 1.0])), lambda s, shape: np.empty(shape))
    assert np.isnan(out[0]) and out[1] == 3.0


@pytest.mark.parametrize(
    ("w", "cheaper"),
    [
        # A sharpening kernel's four -1s cost one sum and one subtraction ...
        ([0, -1, 0, -1, 5, -1, 0, -1, 0], [1, -2, 3, -4, 5, -6, 7, -8, 9]),
        # ... a box is additions only.
        ([1] * 9, [2] * 9),
    ],
)
def test_grouped_taps_cost_fewer_passes(w, cheaper):
    assert passes_cost(tap_groups(np.array(w, float))) < passes_cost(
        tap_groups(np.array(cheaper, float))
    )
