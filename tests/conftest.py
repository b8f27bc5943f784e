"""Shared test settings: a hypothesis profile, a seeded generator, scale-relative closeness."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CONVCLI_SLOW_TESTS=1 runs the property and fuzz tests with many more examples.
settings.register_profile(
    "default", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("slow" if os.environ.get("CONVCLI_SLOW_TESTS") else "default")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def assert_close(actual, expected, *, rtol: float | None = None) -> None:
    """Equal up to ``rtol`` times the expected output's scale (max |value|, at least 1).

    Default tolerance follows the dtype: 1e-5 for float32, 1e-10 for float64.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if rtol is None:
        rtol = 1e-5 if actual.dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    err = float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0))
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:.0e} x scale {scale:.3g}"
