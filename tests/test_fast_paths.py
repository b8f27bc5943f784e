"""Every fast path, forced in turn, against the reference — across tile seams too."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from convcli import _fast, conv2d, conv2d_backward, conv_transpose2d
from convcli._fast.correlate import choose_path
from convcli._fast.engines import next_fast_len
from tests.conftest import assert_close
from tests.reference import ref_conv2d
from tests.strategies import conv_cases

TOLERANCE = {"direct": 1e-5, "separable": 1e-5, "gemm": 1e-5, "fft": 1e-4}


@pytest.mark.parametrize("path", _fast.PATHS)
@given(case=conv_cases(dtype=np.float32))
def test_forced_path_matches_reference(path, case):
    with _fast.force_path(path):
        y = conv2d(
            case.x,
            case.w,
            case.b,
            stride=case.stride,
            padding=case.padding,
            dilation=case.dilation,
            groups=case.groups,
            padding_mode=case.mode,
        )
    expected = ref_conv2d(
        case.x,
        case.w,
        case.b,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert_close(y, expected, rtol=TOLERANCE[path])


@pytest.mark.parametrize("path", _fast.PATHS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("stride", [1, 2])
def test_paths_across_tile_seams(path, mode, stride, rng):
    """Tiny tiles force many seams and border windows; results must not depend on them."""
    x = rng.standard_normal((2, 3, 61, 47)).astype(np.float32)
    w = rng.standard_normal((3, 1, 5, 4)).astype(np.float32)
    expected = conv2d(
        x.astype(np.float64),
        w.astype(np.float64),
        padding="same",
        groups=3,
        padding_mode=mode,
        stride=stride,
    )
    with _fast.force_path(path), _fast.tile_elements(500):
        y = conv2d(x, w, padding="same", groups=3, padding_mode=mode, stride=stride)
    assert_close(y, expected, rtol=TOLERANCE[path])


@pytest.mark.parametrize("path", _fast.PATHS)
def test_transpose_and_backward_on_every_path(path, rng):
    x = rng.standard_normal((2, 4, 13, 11))
    w = rng.standard_normal((6, 2, 3, 4))
    y = conv2d(x, w, groups=2, stride=2, padding=1)
    gy = rng.standard_normal(y.shape)
    expected_t = conv_transpose2d(gy, w, groups=2, stride=2)
    expected_b = conv2d_backward(gy, x, w, groups=2, stride=2, padding=1)
    with _fast.force_path(path), _fast.tile_elements(300):
        assert_close(conv_transpose2d(gy, w, groups=2, stride=2), expected_t, rtol=1e-9)
        for got, want in zip(
            conv2d_backward(gy, x, w, groups=2, stride=2, padding=1), expected_b, strict=True
        ):
            assert_close(got, want, rtol=1e-9)


def test_automatic_choice():
    box = np.ones((3, 1, 5, 5), np.float32)
    assert choose_path(box, 3, np.float32) == "separable"
    assert choose_path(np.random.default_rng(0).random((3, 1, 3, 3)), 3, np.float32) == "direct"
    assert choose_path(np.random.default_rng(0).random((1, 1, 15, 15)), 1, np.float32) == "fft"
    assert (
        choose_path(np.random.default_rng(0).random((1, 1, 15, 15)), 1, np.float32, (3, 3))
        == "direct"
    )
    assert choose_path(np.ones((64, 64, 3, 3)), 1, np.float32) == "gemm"


def test_force_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="path"), _fast.force_path("winograd"):
        pass


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    assert _fast.thread_count() == 3
    monkeypatch.setenv("CONVCLI_THREADS", "zero")
    with pytest.raises(ValueError, match="CONVCLI_THREADS"):
        _fast.thread_count()


def test_next_fast_len():
    assert [next_fast_len(n) for n in (1, 7, 11, 97, 257)] == [1, 8, 12, 100, 270]
