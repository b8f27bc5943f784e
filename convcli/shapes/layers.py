"""Chains of layers for ``convcli shape --layer``: each layer's shape through the
calculator of :mod:`convcli.shapes.calculator`, as a table or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from convcli.errors import ParameterError
from convcli.shapes.calculator import ShapeResult, calculate, parse_ints, weight_shape_for


@dataclass
class Layer:
    """One layer of a chain: kernel, stride, padding, dilation, groups, filters."""

    kernel: tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: object = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    filters: int | None = None
    transpose: bool = False
    output_padding: int | tuple[int, int] = 0


_LAYER_KEYS = {"k", "s", "p", "d", "g", "f", "t", "op"}
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")


def parse_layer(text: str) -> Layer:
    """``k=7,s=2,p=3,f=64`` (keys k, s, p, d, g, f, t, op; KhxKw for kernels).

    Examples
    --------
    >>> parse_layer("k=7,s=2,p=3,f=64")
    Layer(kernel=(7, 7), stride=2, padding=3, dilation=1, groups=1, filters=64, transpose=False, output_padding=0)
    """  # noqa: E501
    values: dict[str, str] = {}
    given: dict[str, str] = {}  # each key's item as written, for the error of a repeat
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _LAYER_KEYS:
            raise ParameterError(
                f"layer {text!r}: {item.strip()!r} is not key=value with key in "
                f"{', '.join(sorted(_LAYER_KEYS))}"
            )
        if key in given:
            raise ParameterError(
                f"layer {text!r}: key {key!r} is given twice ({given[key]} and "
                f"{item.strip()}); give it once"
            )
        values[key], given[key] = value.strip(), item.strip()
    flag = values.get("t", "0").lower()
    if flag not in _YES + _NO:
        raise ParameterError(
            f"layer {text!r}: t={values['t']!r} is not yes or no; use t=1 (transposed) or t=0"
        )
    if "k" not in values:
        raise ParameterError(f"layer {text!r} needs a kernel size, e.g. k=3")

    def number(key: str, default):
        if key not in values:
            return default
        parts = parse_ints(
            values[key], f"layer {text!r}: {key}", minimum=0 if key in ("p", "op") else 1
        )
        return parts[0] if len(parts) == 1 else parts

    kernel = parse_ints(values["k"], f"layer {text!r}: k")
    padding = values.get("p", "0").lower()
    transpose = flag in _YES
    output_padding = number("op", 0)
    if not transpose and output_padding not in (0, (0, 0)):
        raise ParameterError(
            f"layer {text!r}: op={values['op']} (output_padding) applies to transposed "
            f"layers only; add t=1 to make the layer transposed, or drop op"
        )
    return Layer(
        kernel=(kernel[0], kernel[-1]),
        stride=number("s", 1),
        padding=padding if padding in ("same", "valid") else number("p", 0),
        dilation=number("d", 1),
        groups=number("g", 1),
        filters=number("f", None),
        transpose=transpose,
        output_padding=output_padding,
    )


@dataclass
class ChainResult:
    rows: list[tuple[int, Layer, ShapeResult]]
    input_shape: tuple[int, ...]

    def text(self) -> str:
        lines = [
            f"{'layer':<6}{'kind':<11}{'kernel':<9}{'stride':<9}{'padding (t,b,l,r)':<20}output"
        ]
        lines.append(f"{'input':<6}{'':<11}{'':<9}{'':<9}{'':<20}{self.input_shape}")
        for index, layer, result in self.rows:
            g = result.geometry
            lines.append(
                f"{index:<6}{'transpose' if layer.transpose else 'conv':<11}"
                f"{g.kernel_size[0]}x{g.kernel_size[1]:<7}{g.stride[0]}x{g.stride[1]:<7}"
                f"{str(g.padding):<20}{g.output_shape}"
            )
            lines += [f"      warning: {w}" for w in result.warnings]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "layers": [r.as_dict() for _, _, r in self.rows],
        }


def chain(
    input_shape: tuple[int, ...], layers: list[Layer], *, padding_mode: str = "zeros"
) -> ChainResult:
    """Run shapes through layers in order; an impossible layer names its index.
    ``padding_mode`` pads the convolutions (transposed layers pad with zeros).

    Examples
    --------
    >>> r = chain((1, 3, 224, 224), [parse_layer("k=7,s=2,p=3,f=64"), parse_layer("k=3,s=2,p=1")])
    >>> r.rows[-1][2].geometry.output_shape
    (1, 64, 56, 56)
    """
    shape = tuple(input_shape)
    rows = []
    for index, layer in enumerate(layers, start=1):
        weight, groups = weight_shape_for(
            layer.kernel,
            shape[1],
            groups=layer.groups if layer.groups != 1 else None,
            filters=layer.filters,
            transpose=layer.transpose,
        )
        if layer.filters is None and layer.groups == 1:
            weight, groups = (shape[1], 1, *layer.kernel), shape[1]
        try:
            result = calculate(
                shape,
                weight,
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=groups,
                transpose=layer.transpose,
                output_padding=layer.output_padding,
                padding_mode="zeros" if layer.transpose else padding_mode,
            )
        except ParameterError as err:
            raise ParameterError(f"layer {index}: {err}") from None
        rows.append((index, layer, result))
        shape = result.geometry.output_shape
    return ChainResult(rows, tuple(input_shape))
