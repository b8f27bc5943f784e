"""The shape calculator behind ``convcli shape``: output shapes with their formulas,
windows that miss rows, output_padding choices, padding for a target size (chains of
layers are in :mod:`convcli.shapes.layers`). Validation and padding come from
:mod:`convcli.conv.geometry`, so the calculator accepts exactly what the operations accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from convcli.conv.geometry import (
    ConvGeometry,
    conv2d_geometry,
    conv_transpose2d_geometry,
    pair,
    size_formula,
)
from convcli.errors import KernelError, ParameterError
from convcli.kernels.shaping import shape_for_channels
from convcli.shapes.coverage import coverage_warnings

_SEP = re.compile(r"\s*[,x×]\s*")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_ints(text: str, what: str, *, minimum: int = 1) -> tuple[int, ...]:
    """``"1,3,224,224"``, ``"224x224"`` or ``"7"`` -> a tuple of ints >= ``minimum``."""
    parts = _SEP.split(text.strip())
    # ASCII digits only, every field present: int() takes 3_0 (as 30) and other
    # scripts' digits, and a dropped empty field would shift the values after it.
    if not all(_INTEGER.fullmatch(p) for p in parts):
        raise ParameterError(f"{what} {text!r} must be integers like 1,3,224,224 or 224x224")
    values = tuple(int(p) for p in parts)
    if not values or min(values) < minimum:
        raise ParameterError(f"{what} {text!r} must be integers >= {minimum}")
    return values


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """An input shape: ``N,C,H,W``, ``C,H,W`` or ``H,W``/``HxW`` (one gray image).

    Examples
    --------
    >>> parse_shape("224x224"), parse_shape("3,32,32")
    ((1, 1, 224, 224), (1, 3, 32, 32))
    """
    values = parse_ints(text, "input shape")
    if len(values) == 2:
        return (1, 1, *values)
    if len(values) == 3:
        return (1, *values)
    if len(values) == 4:
        return values  # type: ignore[return-value]
    raise ParameterError(f"input shape {text!r} must be N,C,H,W or C,H,W or H,W (or HxW)")


def weight_shape_for(
    kernel: tuple[int, ...],
    channels: int,
    *,
    groups: int | None = None,
    filters: int | None = None,
    transpose: bool = False,
) -> tuple[tuple[int, int, int, int], int]:
    """(4-D weight shape, groups) for a kernel shape, by the command line's shape rule
    (:func:`convcli.kernels.shaping.shape_for_channels`).

    ``K`` or ``(Kh, Kw)`` filters each channel on its own (groups = C) unless
    ``filters`` or ``groups`` asks for a layer of F output channels; ``(C, Kh, Kw)``
    makes one channel; a 4-D shape is taken as is (``(C, F/groups, ...)`` when
    transposed).

    Examples
    --------
    >>> weight_shape_for((3,), 3), weight_shape_for((3, 3), 3, filters=64)
    (((3, 1, 3, 3), 3), ((64, 3, 3, 3), 1))
    """
    if len(kernel) == 1:
        kernel = (kernel[0], kernel[0])
    if len(kernel) == 2 and (filters is not None or groups is not None):
        g = groups or 1
        f = filters or channels
        if transpose:
            return (channels, max(1, f // g), *kernel), g
        return (f, max(1, channels // g), *kernel), g
    if len(kernel) not in (2, 3, 4):
        raise ParameterError(f"kernel shape {kernel} must be K, KhxKw, C,Kh,Kw or F,C,Kh,Kw")
    try:
        return shape_for_channels(kernel, channels, groups=groups, transpose=transpose)
    except KernelError as err:
        raise ParameterError(str(err)) from None


def conv_formula(geo: ConvGeometry, axis: int) -> str:
    """The output-size formula of one axis (0 = H, 1 = W) with the numbers in it."""
    return size_formula(
        "HW"[axis],
        geo.input_shape[2 + axis],
        geo.kernel_size[axis],
        geo.stride[axis],
        geo.dilation[axis],
        geo.padding[2 * axis],
        geo.padding[2 * axis + 1],
        transpose=geo.transpose,
        output_padding=geo.output_padding[axis],
    )[0]


_OPTIONS_SHOWN = 8


def output_padding_options(geo: ConvGeometry) -> list[list[tuple[int, int]]]:
    """Per axis, the valid output_padding values (PyTorch's rule: 0 to max(stride,
    dilation) - 1) and the size each gives; past 8 values, the first 7 and the last."""
    options = []
    for axis in range(2):
        limit = max(geo.stride[axis], geo.dilation[axis])
        base = geo.output_shape[2 + axis] - geo.output_padding[axis]
        values = (
            list(range(limit))
            if limit <= _OPTIONS_SHOWN
            else [
                *range(_OPTIONS_SHOWN - 1),
                limit - 1,
            ]
        )
        options.append([(op, base + op) for op in values])
    return options


@dataclass
class ShapeResult:
    """The calculator's answer for one layer."""

    geometry: ConvGeometry
    formulas: list[str]
    warnings: list[str] = field(default_factory=list)
    output_padding_options: list[list[tuple[int, int]]] | None = None

    def text(self) -> str:
        g = self.geometry
        lines = [f"output: {g.output_shape}"]
        lines += self.formulas
        kind = "transposed " if g.transpose else ""
        mode = "" if g.padding_mode == "zeros" else f" {g.padding_mode}"
        lines.append(
            f"{kind}weight {g.weight_shape}, stride {g.stride}, padding (t,b,l,r) {g.padding}"
            f"{mode}, dilation {g.dilation}, groups {g.groups}"
        )
        if self.output_padding_options:
            for axis, opts in zip("HW", self.output_padding_options, strict=True):
                shown = ", ".join(
                    ("..., " if op and op != previous + 1 else "") + f"{op} -> {size}"
                    for (previous, _), (op, size) in zip([(-1, 0), *opts], opts, strict=False)
                )
                lines.append(f"output_padding on {axis}: {shown}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        g = self.geometry
        data = {
            "input_shape": list(g.input_shape),
            "weight_shape": list(g.weight_shape),
            "stride": list(g.stride),
            "padding": list(g.padding),
            "padding_mode": g.padding_mode,
            "dilation": list(g.dilation),
            "groups": g.groups,
            "transpose": g.transpose,
            "output_padding": list(g.output_padding),
            "output_shape": list(g.output_shape),
            "formulas": {"H": self.formulas[0], "W": self.formulas[1]},
            "warnings": self.warnings,
        }
        if self.output_padding_options:
            data["output_padding_options"] = {
                axis: [{"output_padding": op, "size": size} for op, size in opts]
                for axis, opts in zip("HW", self.output_padding_options, strict=True)
            }
        return data


def calculate(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    transpose: bool = False,
    output_padding=0,
    padding_mode: str = "zeros",
) -> ShapeResult:
    """Output shape, formulas and warnings of one layer; impossible -> ParameterError
    whose message shows the formula that goes wrong (or a ``padding_mode`` that cannot
    pad that much: reflect needs padding smaller than the input).

    Examples
    --------
    >>> r = calculate((10, 3, 32, 32), (1, 3, 5, 5), padding=2)
    >>> r.geometry.output_shape
    (10, 1, 32, 32)
    >>> r.formulas[0]
    'H_out = floor((32 + 2 + 2 - 1*(5-1) - 1) / 1) + 1 = 32'
    """
    if not transpose and pair(output_padding, "output_padding", minimum=0) != (0, 0):
        raise ParameterError(
            f"output_padding {output_padding} applies to transposed convolutions only "
            f"(transpose=True), where it adds rows/columns at the bottom/right; drop it"
        )
    if transpose and padding_mode != "zeros":
        raise ParameterError(
            f"padding mode {padding_mode!r} applies to convolutions; a transposed convolution "
            f"pads with zeros (conv_transpose2d), drop the padding mode"
        )
    if transpose:
        geo = conv_transpose2d_geometry(
            input_shape,
            weight_shape,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )
    else:
        geo = conv2d_geometry(
            input_shape,
            weight_shape,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        )
    formulas = [conv_formula(geo, 0), conv_formula(geo, 1)]
    if transpose:
        return ShapeResult(geo, formulas, [], output_padding_options(geo))
    return ShapeResult(geo, formulas, coverage_warnings(geo))


def solve_target(
    input_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    *,
    target_hw: tuple[int, int],
    stride=1,
    dilation=1,
    transpose: bool = False,
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Padding (top, bottom, left, right) and output_padding reaching ``target_hw``.

    The smallest symmetric padding wins (what PyTorch's ``padding=p`` expresses),
    else the smallest one; for a transposed convolution the padding is symmetric
    with output_padding making up the rest.

    Examples
    --------
    >>> solve_target((32, 32), (3, 3), target_hw=(16, 16), stride=2)
    ((1, 1, 1, 1), (0, 0))
    >>> solve_target((32, 32), (4, 4), target_hw=(32, 32))
    ((1, 2, 1, 2), (0, 0))
    >>> solve_target((16, 16), (4, 4), target_hw=(32, 32), stride=2, transpose=True)
    ((1, 1, 1, 1), (0, 0))
    """
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    pads: list[int] = []
    extras: list[int] = []
    for axis, name in enumerate("HW"):
        size, k, target = input_hw[axis], kernel_hw[axis], target_hw[axis]
        span = d[axis] * (k - 1) + 1
        if target < 1:
            raise ParameterError(f"target {name} {target} must be positive")
        if transpose:
            total = (size - 1) * s[axis] + span - target  # = p_before + p_after - output_padding
            limit = max(s[axis], d[axis])
            # The smallest p >= 0 with 0 <= 2p - total: any larger p only adds 2 to it.
            p = max(0, -(-total // 2))
            choice = (p, 2 * p - total) if 2 * p - total < limit else None
            if choice is None:
                reach = (size - 1) * s[axis] + span + limit - 1
                raise ParameterError(
                    f"no padding gives {name} = {target}: with no padding the transposed output "
                    f"is {(size - 1) * s[axis] + span}, at most {reach} with output_padding; "
                    f"use a larger stride or kernel"
                )
            pads += [choice[0], choice[0]]
            extras.append(choice[1])
        else:
            # out(P) = floor((size + P - span) / s) + 1 grows with the total padding P >= 0;
            # the totals from `least` to `least + s - 1` all reach the target.
            least = (target - 1) * s[axis] + span - size
            if least + s[axis] - 1 < 0:
                unpadded = (size - span) // s[axis] + 1
                raise ParameterError(
                    f"no padding gives {name} = {target}: without padding the output is "
                    f"already {unpadded} (floor(({size} - {span}) / {s[axis]}) + 1); "
                    f"use a larger stride or kernel"
                )
            totals = range(max(least, 0), least + s[axis])
            # An even total pads both sides alike, as PyTorch's Conv2d(padding=p) can.
            total = next((t for t in totals if t % 2 == 0), totals[0])
            pads += [total // 2, total - total // 2]
            extras.append(0)
    return (pads[0], pads[1], pads[2], pads[3]), (extras[0], extras[1])
