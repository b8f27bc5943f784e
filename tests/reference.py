"""The oracle: plain loops that follow the seed tutorial, generalized.

Readable first, slow on purpose. Everything runs in float64 whatever the
input dtype. The seed's loops are extended to groups, dilation, asymmetric
padding, every padding mode, and the transposed convolution as a scatter.
"""

from __future__ import annotations

import numpy as np

NUMPY_MODES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


def ref_pad(x: np.ndarray, pads: tuple[int, int, int, int], mode: str = "zeros") -> np.ndarray:
    """Pad the last two axes by (top, bottom, left, right) with numpy.pad."""
    top, bottom, left, right = pads
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(np.asarray(x, np.float64), width, mode=NUMPY_MODES[mode])


def ref_source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """Which source position each padded position copies (-1: a zero)."""
    index = np.arange(size)
    if mode == "zeros":
        return np.pad(index, (before, after), constant_values=-1)
    return np.pad(index, (before, after), mode=NUMPY_MODES[mode])


def ref_same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's "same": out = ceil(size/s), the smaller half of the total before."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def ref_conv2d(
    x, w, b=None, *, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros"
) -> np.ndarray:
    """The seed's forward loop: y[n, f, h, w] = sum(window * weight[f]) + b[f]."""
    x_pad = ref_pad(x, pads, mode)
    w = np.asarray(w, np.float64)
    n_, c_, hp, wp = x_pad.shape
    f_, cg, hf, wf = w.shape
    fg = f_ // groups
    (sh, sw), (dh, dw) = stride, dilation
    h_out = (hp - dh * (hf - 1) - 1) // sh + 1
    w_out = (wp - dw * (wf - 1) - 1) // sw + 1
    y = np.zeros((n_, f_, h_out, w_out))
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            channels = x_pad[n, g * cg : (g + 1) * cg]
            for h in range(h_out):
                for v in range(w_out):
                    i, j = h * sh, v * sw
                    window = channels[
                        :, i : i + dh * (hf - 1) + 1 : dh, j : j + dw * (wf - 1) + 1 : dw
                    ]
                    y[n, f, h, v] = np.sum(window * w[f]) + (0.0 if b is None else b[f])
    return y


def ref_conv2d_backward(
    grad_y, x, w, *, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros"
):
    """The seed's backward loop, then each padded pixel's gradient sent to its source."""
    x_pad = ref_pad(x, pads, mode)
    w = np.asarray(w, np.float64)
    grad_y = np.asarray(grad_y, np.float64)
    n_, c_, hp, wp = x_pad.shape
    f_, cg, hf, wf = w.shape
    fg = f_ // groups
    (sh, sw), (dh, dw) = stride, dilation
    grad_w = np.zeros(w.shape)
    grad_x_pad = np.zeros(x_pad.shape)
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            for h in range(grad_y.shape[2]):
                for v in range(grad_y.shape[3]):
                    i, j = h * sh, v * sw
                    rows = slice(i, i + dh * (hf - 1) + 1, dh)
                    cols = slice(j, j + dw * (wf - 1) + 1, dw)
                    channels = slice(g * cg, (g + 1) * cg)
                    grad_w[f] += x_pad[n, channels, rows, cols] * grad_y[n, f, h, v]
                    grad_x_pad[n, channels, rows, cols] += w[f] * grad_y[n, f, h, v]
    top, bottom, left, right = pads
    height, width = np.shape(x)[-2:]
    row_src = ref_source_index(height, top, bottom, mode)
    col_src = ref_source_index(width, left, right, mode)
    grad_x = np.zeros(np.shape(x))
    for p in range(hp):
        for q in range(wp):
            if row_src[p] >= 0 and col_src[q] >= 0:
                grad_x[..., row_src[p], col_src[q]] += grad_x_pad[..., p, q]
    grad_b = grad_y.sum(axis=(0, 2, 3))
    return grad_x, grad_w, grad_b


def ref_conv_transpose2d(
    x,
    w,
    b=None,
    *,
    stride=(1, 1),
    pads=(0, 0, 0, 0),
    output_padding=(0, 0),
    dilation=(1, 1),
    groups=1,
) -> np.ndarray:
    """The seed's transposed convolution: each input element scales the filter and is
    added into the output (overlaps sum); then ``pads`` are cut off and
    ``output_padding`` rows/columns kept at the bottom/right."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n_, c_, h, v_ = x.shape
    _, fg, hf, wf = w.shape
    cg = c_ // groups
    (sh, sw), (dh, dw) = stride, dilation
    full_h = (h - 1) * sh + dh * (hf - 1) + 1
    full_w = (v_ - 1) * sw + dw * (wf - 1) + 1
    full = np.zeros((n_, fg * groups, full_h + output_padding[0], full_w + output_padding[1]))
    for n in range(n_):
        for c in range(c_):
            g = c // cg
            for a in range(h):
                for e in range(v_):
                    for i in range(hf):
                        for j in range(wf):
                            full[n, g * fg : (g + 1) * fg, a * sh + i * dh, e * sw + j * dw] += (
                                x[n, c, a, e] * w[c, :, i, j]
                            )
    top, bottom, left, right = pads
    out_h = (h - 1) * sh - top - bottom + dh * (hf - 1) + output_padding[0] + 1
    out_w = (v_ - 1) * sw - left - right + dw * (wf - 1) + output_padding[1] + 1
    y = np.zeros((n_, fg * groups, out_h, out_w))
    rows = min(out_h, full.shape[2] - top)
    cols = min(out_w, full.shape[3] - left)
    y[:, :, :rows, :cols] = full[:, :, top : top + rows, left : left + cols]
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y
