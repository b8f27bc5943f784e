"""The words of a convolution picture: the sum each frame forms, and the notes under
the picture (the operation, the formula per axis, what padding and shading mean).
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from convcli.shapes.calculator import conv_formula

if TYPE_CHECKING:
    from convcli.shapes.diagram import Diagram

MAX_TERMS = 12  # products shown in a sum; the rest summarized


def show_number(value: float) -> str:
    """A cell's number: integers as integers, others with 3 significant digits.

    Examples
    --------
    >>> show_number(3.0), show_number(0.123456), show_number(-2.5)
    ('3', '0.123', '-2.5')
    """
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def frame_caption(d: Diagram, k: int) -> str:
    """What frame ``k`` says: the sum being formed, or the cells the window covers."""
    oh, ow = d.position(k)
    if d.numbers is None:
        rows, cols = d.rows.window(oh), d.cols.window(ow)
        where = "the padded input" if not d.geometry.transpose else "the grid"
        return f"output ({oh}, {ow}) reads rows {_span(rows)}, columns {_span(cols)} of {where}"
    terms = d.terms(k)
    shown = [f"{show_number(v)}*{_factor(w)}" for v, w in terms[:MAX_TERMS]]
    if len(terms) > MAX_TERMS:
        shown.append(f"… ({len(terms) - MAX_TERMS} more)")
    if d.numbers.bias:
        shown.append(_factor(d.numbers.bias))
    total = show_number(d.numbers.y[oh, ow])
    return f"y[{oh},{ow}] = {' + '.join(shown) or '0'} = {total}"


def _factor(value: float) -> str:
    text = show_number(value)
    return f"({text})" if value < 0 else text


def _span(positions: list[int]) -> str:
    if len(positions) == 1:
        return str(positions[0])
    step = positions[1] - positions[0]
    shown = f"{positions[0]}-{positions[-1]}"
    return shown if step == 1 else f"{shown} (every {step})"


def _pads_text(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else f"(t,b,l,r) {tuple(values)}"


def notes(d: Diagram) -> list[str]:
    """The captions under the picture (all frames): the operation, the formula per axis,
    what the padding and the shading mean."""
    g = d.geometry
    (h, w), (kh, kw), (oh, ow) = g.input_shape[2:], g.kernel_size, g.output_shape[2:]
    name = "conv_transpose2d" if g.transpose else "conv2d"
    notes = [
        f"{name}: input {h}x{w}, kernel {kh}x{kw}, stride {_pair_text(g.stride)}, dilation "
        f"{_pair_text(g.dilation)} -> output {oh}x{ow}",
        conv_formula(g, 0),
        conv_formula(g, 1),
        _padding_text(d),
    ]
    if g.transpose:
        notes += _transposed_notes(d)
    unread = _unread_text(d)
    if unread:
        notes.append(unread)
    if g.input_shape[1] > 1 or g.input_shape[0] > 1:
        notes.append(
            "one channel of one image shown: every channel has the same geometry"
            if d.numbers is None
            else "the numbers of channel 0 of the first image; every channel has the same geometry"
        )
    total = oh * ow
    if d.frames < total:
        notes.append(f"the first {d.frames} of {total} output positions are drawn")
    return notes


def _padding_text(d: Diagram) -> str:
    g = d.geometry
    text = f"padding {_pads_text(g.padding)}"
    if isinstance(d.padding_spec, str) and d.padding_spec.strip().lower() == "same":
        text = f"padding 'same' = (t,b,l,r) {g.padding}"
    if g.transpose:
        return text + f", output_padding {_pair_text(g.output_padding)}"
    if not any(g.padding):
        return text
    text += f", {g.padding_mode}"
    if g.padding[1] > g.padding[0] or g.padding[3] > g.padding[2]:
        text += "; the odd one goes at the bottom/right"
    if g.padding_mode != "zeros":
        text += ": each padded cell copies the input cell its grey row and column numbers name"
    return text


def _transposed_notes(d: Diagram) -> list[str]:
    g = d.geometry
    (kh, kw), (dh, dw) = g.kernel_size, g.dilation
    t, b, left, right = g.padding
    implied = (dh * (kh - 1) - t, dh * (kh - 1) - b, dw * (kw - 1) - left, dw * (kw - 1) - right)
    zeros = (g.stride[0] - 1, g.stride[1] - 1)
    between = (
        f"{zeros[0]} zero{'s' * (zeros[0] != 1)}"
        if zeros[0] == zeros[1]
        else f"{zeros[0]} (rows) and {zeros[1]} (columns) zeros"
    )
    notes = [
        f"drawn as Dumoulin & Visin draw it: a stride-1 convolution with the kernel flipped, "
        f"over the input with {between} inserted between cells, padded by dilation*(k-1) "
        f"- padding = {_pads_text(implied)}"
    ]
    if min(implied) < 0:
        notes.append("a negative amount cuts that many cells off the stretched input")
    op = g.output_padding
    if any(op):
        notes.append(
            f"output_padding {_pair_text(op)} adds the last row/column (orange outline), "
            f"read over one more padded row/column"
        )
    if b < 0 or right < 0:
        notes.append(
            f"padding 'same' resolves to a negative padding after {g.padding}: rows/columns "
            f"appended (orange outline), as output_padding would"
        )
    return notes


def _unread_text(d: Diagram) -> str:
    """Name the rows and columns no window reads (shaded)."""
    parts = []
    for axis, word in ((d.rows, "row"), (d.cols, "column")):
        read = axis.read()
        missed = [g for g in range(len(axis.kinds)) if g not in read]
        if not missed:
            continue
        inputs = [axis.source[g] for g in missed if axis.kinds[g] == "input"]
        others = len(missed) - len(inputs)
        said = []
        if inputs:
            said.append(f"input {word}{'s' * (len(inputs) > 1)} {', '.join(map(str, inputs))}")
        if others:
            kind = "padding or zero" if d.geometry.transpose else "padding"
            said.append(f"{others} {kind} {word}{'s' * (others > 1)}")
        parts.append(" and ".join(said))
    if not parts:
        return ""
    why = (
        "cut by the padding"
        if d.geometry.transpose
        else f"stride {_pair_text(d.geometry.stride)} does not fit"
    )
    return f"shaded, never read ({why}): {'; '.join(parts)}"


def _pair_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]},{p[1]}"


def wrap(text: str, width: int) -> list[str]:
    """Caption lines of at most ``width`` characters (a sum breaks between its terms)."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]
