"""Geometry of a convolution: validated arguments, resolved padding, output shape.

The operations and the shape calculator both start here, so an argument that
the calculator accepts is one the operation accepts, with the same message
when it is not.

Output size per axis (``k`` kernel size, ``d`` dilation, ``s`` stride,
``p_a + p_b`` the padding before and after):

- convolution: ``out = floor((in + p_a + p_b - d*(k-1) - 1) / s) + 1``
- transposed:  ``out = (in - 1)*s - p_a - p_b + d*(k-1) + output_padding + 1``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convcli.conv.padding import Pads, _int, check_pad_mode, resolve_padding
from convcli.errors import ParameterError

Pair = tuple[int, int]


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution's shapes, with padding resolved.

    ``input_shape`` and ``output_shape`` are always 4-D (N, C, H, W); an
    unbatched call has N = 1 here.
    """

    input_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    stride: Pair
    padding: Pads
    dilation: Pair
    groups: int
    output_padding: Pair
    transpose: bool
    output_shape: tuple[int, int, int, int]
    padding_mode: str = "zeros"

    @property
    def kernel_size(self) -> Pair:
        return self.weight_shape[2], self.weight_shape[3]


def pair(value: int | Sequence[int], name: str, *, minimum: int = 1) -> Pair:
    """Normalise an int, ``(v,)`` or ``(h, w)`` argument, checking it is at least
    ``minimum``. A one-element tuple or list stands for both axes, as in PyTorch.

    Examples
    --------
    >>> pair(2, "stride"), pair((1, 3), "dilation"), pair([2], "stride")
    ((2, 2), (1, 3), (2, 2))
    """
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) not in (1, 2):
            raise ParameterError(
                f"{name} takes one value, (v,) or (h, w); got {len(value)} values: {tuple(value)!r}"
            )
        values = (_int(value[0], name), _int(value[-1], name))
    else:
        v = _int(value, name)
        values = (v, v)
    if min(values) < minimum:
        which = "positive" if minimum == 1 else f"at least {minimum}"
        shown = values[0] if values[0] == values[1] else values
        raise ParameterError(f"{name} must be {which}, got {shown}")
    return values


def size_formula(
    axis: str,
    size: int,
    k: int,
    s: int,
    d: int,
    before: int,
    after: int,
    *,
    transpose: bool = False,
    output_padding: int = 0,
) -> tuple[str, int]:
    """One axis's output-size formula with the numbers in it, and its value.

    Examples
    --------
    >>> size_formula("H", 32, 5, 1, 1, 2, 2)
    ('H_out = floor((32 + 2 + 2 - 1*(5-1) - 1) / 1) + 1 = 32', 32)
    """
    if transpose:
        out = (size - 1) * s - before - after + d * (k - 1) + output_padding + 1
        return (
            f"{axis}_out = ({size} - 1)*{s} - {before} - {after} + {d}*({k}-1) + "
            f"{output_padding} + 1 = {out}",
            out,
        )
    out = (size + before + after - d * (k - 1) - 1) // s + 1
    return (
        f"{axis}_out = floor(({size} + {before} + {after} - {d}*({k}-1) - 1) / {s}) + 1 = {out}",
        out,
    )


def _as4d(shape: Sequence[int], name: str) -> tuple[int, int, int, int]:
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise ParameterError(f"{name} must be a sequence of integers (N, C, H, W); got {shape!r}")
    dims = tuple(_int(v, name) for v in shape)
    if len(dims) == 3:
        dims = (1, *dims)
    if len(dims) != 4:
        raise ParameterError(
            f"{name} must be (N, C, H, W) or unbatched (C, H, W); got {len(dims)} dimensions "
            f"{tuple(shape)}"
        )
    # An empty batch (N = 0) is allowed, as in PyTorch: the result is empty too.
    if min(dims[1:]) < 1 or dims[0] < 0:
        raise ParameterError(
            f"{name} {tuple(shape)} has an empty dimension; C, H and W must be at least 1"
        )
    return dims  # type: ignore[return-value]


def _weight4d(shape: Sequence[int]) -> tuple[int, int, int, int]:
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise ParameterError(f"weight_shape must be a sequence of 4 integers; got {shape!r}")
    dims = tuple(_int(v, "weight") for v in shape)
    if len(dims) != 4:
        raise ParameterError(
            f"weight must be 4-D (out, in/groups, Hf, Wf); got {len(dims)} dimensions {dims}"
        )
    if min(dims) < 1:
        raise ParameterError(f"weight shape {dims} has an empty dimension")
    return dims  # type: ignore[return-value]


def _check_groups(groups: object, channels: int, filters: int, *, what: str) -> int:
    g = _int(groups, "groups")
    if g < 1:
        raise ParameterError(f"groups must be positive, got {g}")
    if channels % g:
        raise ParameterError(f"groups={g} does not divide the {channels} input channels")
    if filters % g:
        raise ParameterError(f"groups={g} does not divide the {filters} {what}")
    return g


def conv2d_geometry(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | str | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Validate a convolution and compute its geometry, without touching data.

    Examples
    --------
    >>> conv2d_geometry((10, 3, 32, 32), (1, 3, 5, 5), padding=2).output_shape
    (10, 1, 32, 32)
    """
    n, c, h, w = _as4d(input_shape, "input_shape")
    f, cg, kh, kw = _weight4d(weight_shape)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    g = _check_groups(groups, c, f, what="filters (weight.shape[0])")
    if cg * g != c:
        raise ParameterError(
            f"weight takes {cg} channels per group x groups={g} = {cg * g}, but the input has "
            f"{c} channels; the weight must be (F, C/groups, Hf, Wf) = (F, {c // g}, Hf, Wf)"
        )
    pads = resolve_padding(padding, kernel_size=(kh, kw), dilation=d, stride=s, input_size=(h, w))
    check_pad_mode(padding_mode, pads, (h, w))
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    span_h, span_w = d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1
    if span_h > hp or span_w > wp:
        formulas = [
            text
            for text, out in (
                size_formula("H", h, kh, s[0], d[0], pads[0], pads[1]),
                size_formula("W", w, kw, s[1], d[1], pads[2], pads[3]),
            )
            if out < 1
        ]
        raise ParameterError(
            f"kernel {kh}x{kw} (dilation {_show(d)}) does not fit the padded input {hp}x{wp}: "
            f"{'; '.join(formulas)}; pad more, or use a smaller kernel or dilation"
        )
    out = (n, f, (hp - span_h) // s[0] + 1, (wp - span_w) // s[1] + 1)
    return ConvGeometry(
        (n, c, h, w), (f, cg, kh, kw), s, pads, d, g, (0, 0), False, out, padding_mode
    )


def conv_transpose2d_geometry(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | str | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> ConvGeometry:
    """Validate a transposed convolution and compute its geometry.

    The weight is (C, F/groups, Hf, Wf), as in PyTorch. ``output_padding``
    must be smaller than the stride or the dilation on each axis (PyTorch's rule).

    Examples
    --------
    >>> conv_transpose2d_geometry((1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1,
    ...                           output_padding=1).output_shape
    (1, 1, 4, 4)
    """
    n, c, h, w = _as4d(input_shape, "input_shape")
    cw, fg, kh, kw = _weight4d(weight_shape)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    op = pair(output_padding, "output_padding", minimum=0)
    g = _check_groups(groups, c, cw, what="weight input channels (weight.shape[0])")
    if cw != c:
        raise ParameterError(
            f"transposed weight must be (C, F/groups, Hf, Wf) with C = {c} input channels; "
            f"got weight.shape[0] = {cw}"
        )
    check_output_padding(op, s, d)
    pads = resolve_padding(
        padding, kernel_size=(kh, kw), dilation=d, stride=s, input_size=(h, w), transpose=True
    )
    text_h, out_h = size_formula(
        "H", h, kh, s[0], d[0], pads[0], pads[1], transpose=True, output_padding=op[0]
    )
    text_w, out_w = size_formula(
        "W", w, kw, s[1], d[1], pads[2], pads[3], transpose=True, output_padding=op[1]
    )
    if out_h < 1 or out_w < 1:
        failing = "; ".join(t for t, o in ((text_h, out_h), (text_w, out_w)) if o < 1)
        raise ParameterError(
            f"padding {pads} (top, bottom, left, right) leaves no output: {failing}; "
            f"use less padding"
        )
    out = (n, fg * g, out_h, out_w)
    return ConvGeometry((n, c, h, w), (cw, fg, kh, kw), s, pads, d, g, op, True, out)


def check_output_padding(output_padding, stride, dilation) -> Pair:
    """``output_padding`` as a pair, smaller than the stride or the dilation on each axis
    (PyTorch's rule: more would add rows no input reaches).

    Examples
    --------
    >>> check_output_padding(1, 2, 1)
    (1, 1)
    """
    op = pair(output_padding, "output_padding", minimum=0)
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    for axis, o, si, di in zip("HW", op, s, d, strict=True):
        if o >= si and o >= di:
            raise ParameterError(
                f"output_padding {o} on {axis} must be smaller than the stride ({si}) or the "
                f"dilation ({di})"
            )
    return op


def _show(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"
