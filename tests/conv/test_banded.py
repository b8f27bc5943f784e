"""The separable engine's banded products against the reference loops, where blocks end."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import conv2d
from convcli.conv import engines
from convcli.conv.engines.banded import banded
from tests.conftest import assert_close
from tests.reference import ref_conv2d


def test_banded_matrix_holds_the_taps_on_its_diagonals():
    taps = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    matrix = banded(taps, 4)
    assert matrix.shape == (2, 4, 6)
    x = np.arange(6.0)
    for filt in range(2):
        expected = [taps[filt] @ x[r : r + 3] for r in range(4)]
        np.testing.assert_allclose(matrix[filt] @ x, expected)


@pytest.mark.parametrize("width", [1, 5, 31, 32, 33, 64, 97])
@pytest.mark.parametrize(("rank", "per_group"), [(1, 1), (2, 1), (1, 2), (2, 3)])
def test_separable_products_at_block_edges(width, rank, per_group):
    rng = np.random.default_rng(width * 10 + rank)
    taps = (
        rng.standard_normal((rank, 2 * per_group, 5)),
        rng.standard_normal((rank, 2 * per_group, 7)),
    )
    # A sum of ``rank`` outer products: the separable path splits it back.
    w = np.einsum("qfi,qfj->fij", *taps)[:, None].astype(np.float32)
    x = rng.standard_normal((2, 2, 19, width)).astype(np.float32)
    expected = ref_conv2d(x, w, pads=(2, 2, 3, 3), groups=2)
    with engines.force_path("separable"), engines.tile_elements(300):
        y = conv2d(x, w, padding=(2, 3), groups=2)
    assert_close(y, expected, rtol=1e-5)
