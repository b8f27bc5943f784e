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


def term_scale(*arrays) -> float:
    """Magnitude of one term of the sums an output is made of: the product of the factors'
    largest magnitudes (e.g. ``term_scale(x, w)`` for a convolution).

    Passed as ``assert_close``'s ``scale`` where an output can be a few terms that cancel
    (a 1x1 output, a bias gradient): float32 rounding is relative to the terms, not to
    what is left after they cancel.
    """
    return float(np.prod([np.max(np.abs(a), initial=0.0) for a in arrays]))


def assert_close(actual, expected, *, rtol: float | None = None, scale: float = 0.0) -> None:
    """Equal up to ``rtol`` times the expected output's scale (its largest magnitude, or
    ``scale`` if that is larger).

    Default tolerance follows the dtype: 1e-5 for float32, 1e-10 for float64. An
    all-zero expectation is compared with scale 1. NaN anywhere fails.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if rtol is None:
        rtol = 1e-5 if actual.dtype == np.float32 else 1e-10
    if actual.size == 0:
        return
    scale = max(float(np.max(np.abs(expected))), scale) or 1.0
    diff = np.abs(actual.astype(np.float64) - expected)
    err = float(np.max(diff))
    worst = int(np.argmax(np.isnan(diff))) if np.isnan(err) else int(np.argmax(diff))
    where = np.unravel_index(worst, diff.shape)
    assert err <= rtol * scale, (
        f"max error {err:.3g} > {rtol:.0e} x scale {scale:.3g} at {tuple(map(int, where))}: "
        f"got {actual[where]!r}, expected {expected[where]!r}"
    )


@pytest.fixture(scope="session")
def cluster_address():
    """A real dask.distributed LocalCluster of 2 single-threaded worker processes, for the
    tests that send work to a scheduler's address (``--scheduler tcp://...``)."""
    distributed = pytest.importorskip("distributed")
    from convcli.scale.schedulers import WORKER_ENV

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # no fixed port: several test runs share the machine
        env=WORKER_ENV,
    ) as cluster:
        yield cluster.scheduler_address
