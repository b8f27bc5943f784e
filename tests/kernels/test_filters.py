"""The Filter every source ends in, and filter banks built from filters."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels.filters import Filter, filter_bank
from convcli.kernels.loader import load_filter
from tests.paths import FILTERS


@pytest.mark.parametrize("spec", ["gaussian:9", "sobel", str(FILTERS / "unsharp.json")])
def test_a_filter_pickles_for_cluster_workers_with_its_read_only_options(spec):
    import pickle

    f = load_filter(spec)
    again = pickle.loads(pickle.dumps(f))
    assert type(again.options).__name__ == "mappingproxy" and dict(again.options) == dict(f.options)
    assert all(np.array_equal(a, b) for a, b in zip(again.weights, f.weights, strict=True))
    assert (again.description, again.files, again.combine) == (f.description, f.files, f.combine)


def test_a_bank_of_banks_with_one_rule_is_one_bank_of_their_weights():
    x, y = np.eye(3), np.ones((3, 3))
    inner = filter_bank([Filter(x), Filter(y)], "inner")
    outer = filter_bank([inner, Filter(-x)], "outer", bias=np.array([0.5]))
    assert [w.tolist() for w in outer.bank] == [x.tolist(), y.tolist(), (-x).tolist()]
    assert outer.weight is outer.bank[0] and outer.bias.tolist() == [0.5]


@pytest.mark.parametrize(
    ("members", "combine", "needle"),
    [
        ([], "magnitude", "the bank is empty"),
        ([Filter(np.eye(3)), Filter(np.eye(5))], "magnitude", r"different shapes \(3x3, 5x5\)"),
        ([Filter(np.eye(3), bias=np.array([1.0]))], "magnitude", "sets bias"),
        ([filter_bank([Filter(np.eye(3))], "b")], "abs-sum", "combines its responses by"),
    ],
)
def test_a_bank_refuses_what_would_apply_to_one_response_or_not_combine(members, combine, needle):
    with pytest.raises(KernelError, match=needle):
        filter_bank(members, "bank", combine=combine)
