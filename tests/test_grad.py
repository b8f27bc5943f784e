"""conv2d_backward: reference loops, finite differences, the adjoint identity, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import ParameterError, conv2d, conv2d_backward, conv_transpose2d
from tests.conftest import assert_close
from tests.reference import ref_conv2d_backward
from tests.strategies import MODES, conv_cases

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional oracle
    torch = None


def _options(case):
    return dict(
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )


@given(conv_cases(max_size=7))
def test_backward_matches_reference(case):
    y = conv2d(case.x, case.w, **_options(case))
    gy = np.random.default_rng(0).standard_normal(y.shape)
    gx, gw, gb = conv2d_backward(gy, case.x, case.w, **_options(case))
    rx, rw, rb = ref_conv2d_backward(
        gy,
        case.x,
        case.w,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    assert_close(gx, rx)
    assert_close(gw, rw)
    assert_close(gb, rb)


@given(conv_cases(modes=("zeros",), max_size=7))
def test_adjoint_identity(case):
    """<conv2d(x), y> == <x, conv_transpose2d(y)>, the transpose sized to the input."""
    y = conv2d(case.x, case.w, **_options(case))
    probe = np.random.default_rng(1).standard_normal(y.shape)
    top, bottom, left, right = case.pads
    h, w = case.x.shape[2:]
    # output_padding makes up the rows a stride leaves unread; beyond that, pad the crop.
    full_h = (y.shape[2] - 1) * case.stride[0] + (case.w.shape[2] - 1) * case.dilation[0] + 1
    full_w = (y.shape[3] - 1) * case.stride[1] + (case.w.shape[3] - 1) * case.dilation[1] + 1
    extra = (h + top + bottom - full_h, w + left + right - full_w)
    back = conv_transpose2d(
        probe, case.w, stride=case.stride, dilation=case.dilation, groups=case.groups, padding=0
    )
    back = np.pad(back, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    back = back[:, :, top : top + h, left : left + w]
    lhs = float(np.sum(y * probe))
    rhs = float(np.sum(case.x * back))
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
    y = conv2d(case.x, case.w, **_options(case))
    gy = np.random.default_rng(2).standard_normal(y.shape)
    gx, _, _ = conv2d_backward(gy, case.x, case.w, **_options(case))
    top, bottom, left, right = case.pads
    h, w = case.x.shape[2:]
    out_h, out_w = h + top + bottom, w + left + right
    full = conv_transpose2d(
        gy, case.w, stride=case.stride, dilation=case.dilation, groups=case.groups
    )
    full = np.pad(full, ((0, 0), (0, 0), (0, out_h - full.shape[2]), (0, out_w - full.shape[3])))
    assert_close(gx, full[:, :, top : top + h, left : left + w])


@pytest.mark.parametrize("mode", MODES)
def test_finite_differences(mode, rng):
    """Central differences of L = <conv2d(x, w) + b, probe> match all three gradients."""
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)
    opts = dict(stride=(2, 1), padding=(2, 1, 1, 1), dilation=(1, 2), groups=2, padding_mode=mode)
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
    gx, gw, gb = conv2d_backward(gy, case.x, case.w, **_options(case))
    assert_close(gx, xt.grad.numpy())
    assert_close(gw, wt.grad.numpy())
    assert_close(gb, bt.grad.numpy())
