"""conv2d_backward: reference loops, finite differences, the adjoint identity, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import ParameterError, conv2d, conv2d_backward, conv_transpose2d
from tests.conftest import assert_close, term_scale
from tests.reference import ref_conv2d_backward
from tests.strategies import MODES, any_transpose_cases, conv_cases

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional oracle
    torch = None


def _reference_backward(gy, case):
    """The reference loops' gradients for a hypothesis ``case``."""
    return ref_conv2d_backward(
        gy,
        case.x,
        case.w,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )


@given(conv_cases(max_size=7))
def test_backward_matches_reference(case):
    y = conv2d(case.x, case.w, **case.options())
    gy = np.random.default_rng(0).standard_normal(y.shape)
    gx, gw, gb = conv2d_backward(gy, case.x, case.w, **case.options())
    rx, rw, rb = _reference_backward(gy, case)
    assert_close(gx, rx)
    assert_close(gw, rw)
    assert_close(gb, rb)


def _transpose_back(case, y):
    """conv_transpose2d sized to the conv's input: its padding, plus the rows/columns a
    stride leaves unread as output_padding."""
    top, bottom, left, right = case.pads
    h, w = case.x.shape[2:]
    span = [(k - 1) * d + 1 for k, d in zip(case.w.shape[2:], case.dilation, strict=True)]
    extra = tuple(
        (size + a + b - sp) % s
        for size, a, b, sp, s in zip(
            (h, w), case.pads[::2], case.pads[1::2], span, case.stride, strict=True
        )
    )
    back = conv_transpose2d(
        y,
        case.w,
        stride=case.stride,
        padding=(top, bottom, left, right),
        output_padding=extra,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert back.shape == case.x.shape
    return back


@given(conv_cases(max_size=6))
def test_backward_unbatched_matches_reference(case):
    """(C, H, W) input and (F, H_out, W_out) grad_output: grad_x comes back 3-D."""
    x = case.x[0]
    y = conv2d(x, case.w, **case.options())
    gy = np.random.default_rng(6).standard_normal(y.shape)
    gx, gw, gb = conv2d_backward(gy, x, case.w, **case.options())
    rx, rw, rb = ref_conv2d_backward(
        gy[None],
        x[None],
        case.w,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert gx.shape == x.shape
    assert_close(gx, rx[0])
    assert_close(gw, rw)
    assert_close(gb, rb)


@given(conv_cases(modes=("zeros",), max_size=7))
def test_adjoint_identity(case):
    """<conv2d(x), y> == <x, conv_transpose2d(y)>, the transpose sized to the input."""
    y = conv2d(case.x, case.w, **case.options())
    probe = np.random.default_rng(1).standard_normal(y.shape)
    lhs = float(np.sum(y * probe))
    rhs = float(np.sum(case.x * _transpose_back(case, probe)))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


@given(any_transpose_cases())
def test_adjoint_identity_from_the_transpose_side(case):
    """<conv_transpose2d(x), y> == <x, conv2d(y)> with the same padding; rows that only
    output_padding added (when it reaches the dilation) see no input."""
    if case.x.ndim == 3:
        case.x = case.x[None]
    up = conv_transpose2d(
        case.x,
        case.w,
        stride=case.stride,
        padding=case.padding,
        output_padding=case.output_padding,
        dilation=case.dilation,
        groups=case.groups,
    )
    probe = np.random.default_rng(4).standard_normal(up.shape)
    top, bottom, left, right = case.pads
    # A negative bottom/right (transposed "same" with a kernel shorter than the stride)
    # means zero rows were appended: the conv reads them as a crop instead.
    crop = probe[..., : probe.shape[-2] + min(bottom, 0), : probe.shape[-1] + min(right, 0)]
    down = conv2d(  # the same weight array: conv2d reads it as (C, F/groups, ...)
        crop,
        case.w,
        stride=case.stride,
        padding=(top, max(bottom, 0), left, max(right, 0)),
        dilation=case.dilation,
        groups=case.groups,
    )
    down = down[..., : case.x.shape[-2], : case.x.shape[-1]]
    assert down.shape == case.x.shape
    lhs = float(np.sum(up * probe))
    rhs = float(np.sum(case.x * down))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


@given(
    st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 3), st.integers(1, 2)
)
def test_same_padding_transpose_is_adjoint_of_same_conv(h, w, k, s, d):
    """Transposed "same" is the adjoint of conv2d "same" on an input of in*stride."""
    rng = np.random.default_rng(h * 100 + w)
    weight = rng.standard_normal((2, 3, k, k))
    x = rng.standard_normal((1, 3, h * s, w * s))
    y = conv2d(x, weight, stride=s, dilation=d, padding="same")
    assert y.shape == (1, 2, h, w)
    probe = rng.standard_normal(y.shape)
    back = conv_transpose2d(probe, weight, stride=s, dilation=d, padding="same")
    assert back.shape == x.shape
    assert abs(np.sum(y * probe) - np.sum(x * back)) <= 1e-9 * max(1.0, abs(np.sum(y * probe)))


@given(conv_cases(modes=("zeros",), max_size=7))
def test_transpose_equals_backward_grad_x(case):
    y = conv2d(case.x, case.w, **case.options())
    gy = np.random.default_rng(2).standard_normal(y.shape)
    gx, _, _ = conv2d_backward(gy, case.x, case.w, **case.options())
    assert_close(gx, _transpose_back(case, gy))


@given(conv_cases(max_size=7, dtype=np.float32))
def test_backward_float32(case):
    y = conv2d(case.x, case.w, **case.options())
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    got = conv2d_backward(gy, case.x, case.w, **case.options())
    want = _reference_backward(gy, case)
    scales = (term_scale(gy, case.w), term_scale(gy, case.x), term_scale(gy))
    for g, r, scale in zip(got, want, scales, strict=True):
        assert g.dtype == np.float32
        assert_close(g, r, scale=scale)


FD_CONFIGS = {
    "asymmetric": dict(stride=(2, 1), padding=(2, 1, 1, 1), dilation=(1, 2), groups=2),
    "same-strided": dict(stride=(2, 3), padding="same", dilation=(2, 1), groups=1),
}


@pytest.mark.parametrize("config", FD_CONFIGS)
@pytest.mark.parametrize("mode", MODES)
def test_finite_differences(mode, config, rng):
    """Central differences of L = <conv2d(x, w) + b, probe> match all three gradients."""
    x = rng.standard_normal((2, 4, 6, 5))
    groups = FD_CONFIGS[config]["groups"]
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    opts = dict(FD_CONFIGS[config], padding_mode=mode)
    probe = rng.standard_normal(conv2d(x, w, b, **opts).shape)

    def loss(x_, w_, b_):
        return float(np.sum(conv2d(x_, w_, b_, **opts) * probe))

    gx, gw, gb = conv2d_backward(probe, x, w, **opts)
    eps = 1e-6
    for grad, array, which in ((gx, x, 0), (gw, w, 1), (gb, b, 2)):
        for index in list(np.ndindex(array.shape))[:: max(1, array.size // 25)]:
            args = [x.copy(), w.copy(), b.copy()]
            args[which][index] += eps
            up = loss(*args)
            args[which][index] -= 2 * eps
            down = loss(*args)
            assert abs((up - down) / (2 * eps) - grad[index]) < 1e-5, (which, index)


def test_backward_unbatched_and_shape_check():
    x, w = np.ones((2, 5, 5)), np.ones((3, 2, 3, 3))
    gx, gw, gb = conv2d_backward(np.ones((3, 3, 3)), x, w)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (3,)
    with pytest.raises(ParameterError, match="grad_output"):
        conv2d_backward(np.ones((3, 4, 4)), x, w)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@given(conv_cases(modes=("zeros", "reflect", "replicate", "circular"), max_size=7))
def test_backward_matches_torch_autograd(case):
    top, bottom, left, right = case.pads
    if case.mode == "circular":
        assume(max(top, bottom) <= case.x.shape[2] and max(left, right) <= case.x.shape[3])
    xt = torch.tensor(case.x, requires_grad=True)
    wt = torch.tensor(case.w, requires_grad=True)
    bt = torch.tensor(case.b, requires_grad=True)
    mode = "constant" if case.mode == "zeros" else case.mode
    padded = F.pad(xt, (left, right, top, bottom), mode=mode)
    yt = F.conv2d(padded, wt, bt, stride=case.stride, dilation=case.dilation, groups=case.groups)
    gy = np.random.default_rng(3).standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(gy))
    gx, gw, gb = conv2d_backward(gy, case.x, case.w, **case.options())
    assert_close(gx, xt.grad.numpy())
    assert_close(gw, wt.grad.numpy())
    assert_close(gb, bt.grad.numpy())
