"""From an image and filter options to output pixels: what ``apply`` and ``upsample`` do.

- Alpha is filtered premultiplied (colour times alpha), so transparent pixels
  do not bleed their colour into their neighbours; colour is divided back after.
- Several kernels apply in order, each on the previous result.
- Values outside [0, 1] become pixels by ``clip`` (counted), ``abs`` (then clip)
  or ``normalize`` (stretch min..max to 0..1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from convcli.conv import memory
from convcli.conv.engines.correlate import Sink, choose_path, exact_integers
from convcli.conv.geometry import ConvGeometry, conv_transpose2d_geometry
from convcli.conv.operations import add_bias, conv2d, conv2d_into
from convcli.conv.padding import PaddedSource, check_pad_mode
from convcli.conv.transposed import transpose_into

# map_range lives in ranges.py; the jobs that write files call it as pipeline.map_range.
from convcli.jobs.convolutions import (  # noqa: F401 - prepare: reached as pipeline.prepare
    finish_step,
    geometry,
    plan_step,
    prepare,
    prepare_on,
    transpose_margin,
)
from convcli.jobs.quantized import Quantizing, takes_integers
from convcli.jobs.ranges import extreme, map_range  # noqa: F401
from convcli.jobs.step import (  # Step is reached as pipeline.Step too
    Step,
    is_derivative,
)
from convcli.kernels.filters import Filter

if TYPE_CHECKING:
    from convcli.images.writing import Integers


@dataclass
class Result:
    """The filtered values (raw floats, alpha divided back out) and what reports need;
    or, when :func:`apply_steps` was asked to ``quantize``, the image file's integers
    (``integers``, the clipped values counted; ``values`` is then None)."""

    values: np.ndarray | None
    has_alpha: bool = False
    geometries: list[ConvGeometry] = field(default_factory=list)
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)
    minimum: np.ndarray | None = None  # per sample, NaN ignored
    maximum: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    integers: Integers | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, C, H, W) of the result."""
        if self.values is not None:
            return self.values.shape
        n, height, width, channels = self.integers.values.shape  # type: ignore[union-attr]
        return (n, channels, height, width)


def run_step(
    x: np.ndarray, step: Step, *, divisor: int | None = None, sink: Sink | None = None
) -> tuple[np.ndarray | Sink, ConvGeometry, tuple[int, ...]]:
    """One convolution (or transposed convolution) of (N, C, H, W) float32 pixels, and
    its geometry and weight shape. A filter bank runs each of its K weights and combines
    the responses (by magnitude or abs-sum, then adds the bias); its weight shape is
    (K, F, C, Hf, Wf). With ``divisor``, ``x`` holds integers read as ``x / divisor``; a
    ``sink`` (a plain step only) gets the result tile by tile (see :func:`_run_one`).
    """
    if sink is not None:
        return _run_one(x, step, divisor=divisor, sink=sink)
    plan = plan_step(step, x.shape)
    responses = [_run_one(x, one, divisor=divisor)[0] for one in plan.convolutions]
    return finish_step(plan, responses), plan.geometry, plan.weight_shape


def _run_one(
    x: np.ndarray, step: Step, *, divisor: int | None = None, sink: Sink | None = None
) -> tuple[np.ndarray | Sink, ConvGeometry, tuple[int, ...]]:
    """One plain (not a bank) convolution or transposed convolution of ``x``, its
    geometry and weight shape. ``divisor`` and ``sink`` are those of
    :func:`convcli.conv.operations.conv2d_into`: integers in, tiles out (bias added)."""
    weight, groups, bias, geo = prepare_on(step, x.shape)
    options = dict(stride=geo.stride, dilation=geo.dilation, groups=groups)
    if not step.transpose:
        options.update(padding=geo.padding, padding_mode=geo.padding_mode)
        if sink is not None or divisor is not None:
            out = sink if sink is not None else _Whole(geo.output_shape)
            conv2d_into(out, x, weight, bias, divisor=divisor, **options)
            return (out if sink is not None else out.values), geo, weight.shape
        return conv2d(x, weight, bias, **options), geo, weight.shape
    # Transposed: pad the input (edge-replicated by default, unless "zeros") so that
    # borders see real neighbours (a constant image stays constant), and keep only the
    # output of the unpadded input. The padding is the source's index maps and the cut is
    # where the phases start, so neither the padded input nor the larger output is made.
    margin = (0, 0)
    if geo.padding_mode != "zeros":
        margin = transpose_margin(weight.shape[2:], geo.stride, geo.dilation)
    pads = (margin[0], margin[0], margin[1], margin[1])
    check_pad_mode(geo.padding_mode, pads, x.shape[2:])
    source = PaddedSource(x, pads, geo.padding_mode, divisor=divisor)
    # The spec, not geo.padding: transposed "same" resolves to a negative bottom/right
    # (rows appended), which only the spec expresses.
    padded = conv_transpose2d_geometry(
        source.shape,
        weight.shape,
        padding=step.padding,
        output_padding=step.output_padding,
        **options,
    )
    out = sink if sink is not None else memory.allocate(geo.output_shape, np.float32, "the output")
    transpose_into(
        source,
        weight,
        top=padded.padding[0] + margin[0] * geo.stride[0],
        left=padded.padding[2] + margin[1] * geo.stride[1],
        out=out,
        bias=bias if sink is not None else None,
        **options,
    )
    if sink is None:
        add_bias(out, bias, geo.output_shape[1])
    return out, geo, weight.shape


class _Whole:
    """A sink that gathers the tiles into one array (integers in, floats out)."""

    def __init__(self, shape: tuple[int, int, int, int]) -> None:
        self.shape = shape
        self.values = memory.allocate(shape, np.float32, "the output")

    def put(self, at: tuple[slice, slice, slice], block: np.ndarray) -> None:
        self.values[at[0], :, at[1], at[2]] = block


def alpha_carrier(step: Step) -> Step:
    """The step that carries alpha through a derivative step unfiltered: a delta at the
    kernel's centre (alpha sampled where the step's windows are centred), same stride,
    padding and dilation."""
    kh, kw = step.filter.weight.shape
    delta = np.zeros((kh, kw))
    delta[(kh - 1) // 2, (kw - 1) // 2] = 1.0
    plain = Filter(delta, source=step.filter.source)
    return replace(step, filter=plain, bias=None, flip=False, normalize=False, groups=None)


def premultiplies(steps: list[Step], *, has_alpha: bool) -> bool:
    """Whether alpha is filtered premultiplied: with alpha, and per-channel kernels only."""
    return has_alpha and all(s.filter.weight.ndim == 2 for s in steps)


def premultiply(x: np.ndarray) -> np.ndarray:
    """Colour times alpha (the last channel), in place."""
    x[:, :-1] *= x[:, -1:]
    return x


def unpremultiply(x: np.ndarray) -> np.ndarray:
    """Colour divided back by alpha, in place; 0 where alpha is (about) 0."""
    alpha = x[:, -1:]
    safe = np.where(alpha > 1e-6, alpha, 1.0)
    with np.errstate(invalid="ignore"):  # Inf / Inf is NaN, as in a float pipeline
        x[:, :-1] = np.where(alpha > 1e-6, x[:, :-1] / safe, 0.0)
    return x


def step_notes(step: Step, geo: ConvGeometry) -> list[str]:
    """What a step's result on one image should be read with: the symmetric padding of an
    image too small to mirror. (What the step alone decides, such as upsampling's stride
    phases, is :func:`convcli.jobs.advice.step_warnings`, given once for a batch.)"""
    notes = []
    if step.pad_mode is None and geo.padding_mode == "symmetric":
        notes.append(
            f"the image is too small to mirror {geo.padding} (top, bottom, left, right) "
            f"pixels without repeating the edge; padded 'symmetric' instead of 'reflect'"
        )
    return notes


def apply_steps(
    pixels: np.ndarray,
    steps: list[Step],
    *,
    has_alpha: bool,
    divisor: int | None = None,
    quantize: int | None = None,
) -> Result:
    """Run every step on (N, C, H, W) pixels, alpha premultiplied; return raw values.

    Per-channel (2-D) kernels filter alpha too, premultiplied. A derivative step
    (:func:`is_derivative`: a gradient magnitude, sobel-x, a Laplacian) filters the
    premultiplied colour (so a shape's outline is an edge) and keeps alpha as it was;
    its result is a response, not a colour, and is not divided by alpha. A channel-mixing
    (3-D/4-D) weight that takes the colour channels only drops the alpha channel.
    :func:`map_range` then turns the values into pixels.

    With ``divisor``, ``pixels`` are an image's stored integers, read as
    ``float32(pixels) / divisor`` (:class:`convcli.images.decoded.Stored`), a tile at a
    time where nothing needs them whole first. With ``quantize`` (8 or 16), a last step
    that is one plain convolution (no bank, nothing to divide by alpha after it) makes
    ``Result.integers`` tile by tile (:class:`convcli.jobs.quantized.Quantizing`) and no
    ``values``: the same integers and counts as :func:`convcli.images.writing.quantize`
    of the values would give.
    """
    x = pixels
    notes: list[str] = []
    if drops_alpha(steps, x.shape[1], has_alpha=has_alpha):
        x, has_alpha = x[:, :-1], False
        notes.append(DROPPED_ALPHA)
    premultiplied = premultiplies(steps, has_alpha=has_alpha)
    if premultiplied:
        if divisor is not None:
            x, divisor = np.divide(x, np.float32(divisor), dtype=np.float32), None
        else:
            x = x.copy()
        premultiply(x)
    result = Result(x, has_alpha=has_alpha and premultiplied, warnings=notes)
    responded = False  # the colour channels hold a response, not colour times alpha
    sink = None
    for index, step in enumerate(steps):
        derivative = premultiplied and is_derivative(step)
        alpha = _run_one(x[:, -1:], alpha_carrier(step))[0] if derivative else None
        if quantize and index == len(steps) - 1 and not (step.filter.bank or premultiplied):
            sink = Quantizing(geometry(step, x.shape).output_shape, quantize)
        x, geo, wshape = run_step(x, step, divisor=divisor, sink=sink)
        divisor = None
        if derivative:
            x[:, -1:] = alpha
            responded = True
        notes += step_notes(step, geo)
        result.geometries.append(geo)
        result.weight_shapes.append(wshape)
    if sink is not None:
        result.values = None
        result.integers, result.minimum, result.maximum = sink.finish()
        return result
    if divisor is not None:  # no step read the integers (an empty chain)
        x = np.divide(x, np.float32(divisor), dtype=np.float32)
    if premultiplied and not responded:
        unpremultiply(x)
    result.values = x
    result.minimum = extreme(x, np.fmin)
    result.maximum = extreme(x, np.fmax)
    return result


def exact_divisor(
    steps: list[Step], shape: tuple[int, ...], *, has_alpha: bool, top: int, depth: int
) -> int | None:
    """``top`` when :func:`apply_steps` of stored integers over ``top`` (an image's
    (N, C, H, W) ``shape``), quantized to ``depth``, sums them exactly in integers
    (:func:`~convcli.conv.engines.correlate.exact_integers`: one plain step of integer
    weights on the ``taps`` path, nothing premultiplied), else None. Its values are then
    integers over ``top``: blocks of the same job round theirs to them, so that both
    report the same bounds and clipped counts."""
    step = steps[0]
    if len(steps) != 1 or shape[0] != 1 or step.filter.bank or step.transpose:
        return None
    if drops_alpha(steps, shape[1], has_alpha=has_alpha):
        shape, has_alpha = (shape[0], shape[1] - 1, *shape[2:]), False
    if premultiplies(steps, has_alpha=has_alpha) or not takes_integers(top, depth):
        return None
    weight, groups, bias, geo = prepare_on(step, shape)
    if choose_path(weight, groups, np.float32, geo.stride) != "taps":
        return None
    stored = np.uint8 if top <= 255 else np.uint16
    return top if exact_integers(weight, stored, bias) is not None else None


DROPPED_ALPHA = "the kernel takes the colour channels only; alpha dropped"


def drops_alpha(steps: list[Step], channels: int, *, has_alpha: bool) -> bool:
    """True when the first kernel mixes channels and takes the colour ones only."""
    first = steps[0]
    weight = first.filter.weight
    if not has_alpha or weight.ndim == 2:
        return False
    if weight.ndim == 3 or first.transpose:
        taken = weight.shape[0]
    else:
        taken = weight.shape[1] * (first.groups or 1)
    return taken == channels - 1


def output_shape(shape: tuple[int, ...], steps: list[Step], *, has_alpha: bool) -> tuple[int, ...]:
    """The (N, C, H, W) that :func:`apply_steps` returns for pixels of ``shape``, validated
    step by step, without computing anything."""
    if drops_alpha(steps, shape[1], has_alpha=has_alpha):
        shape = (shape[0], shape[1] - 1, *shape[2:])
    for step in steps:
        shape = geometry(step, shape).output_shape
    return tuple(shape)


def estimate_bytes(shape: tuple[int, ...], steps: list[Step], *, has_alpha: bool = False) -> int:
    """Working set of a job in bytes (float32): the images as read and as much again (the
    decoded bytes, or the next input decoded meanwhile), every step's output (a transposed
    step also its edge-padded input), copies made by alpha handling and
    range mapping, and tile buffers.

    Examples
    --------
    >>> from convcli.kernels.loader import load_filter
    >>> estimate_bytes((1, 3, 1000, 1000), [Step(load_filter("box:3"))]) // 2**20
    121
    """
    if drops_alpha(steps, shape[1], has_alpha=has_alpha):
        shape = (shape[0], shape[1] - 1, *shape[2:])
    size = 4 * math.prod(shape)
    total = 2 * size  # the images as read, and as much again decoded beside them
    largest = size
    for step in steps:
        before = shape
        shape = geometry(step, shape).output_shape
        size = 4 * math.prod(shape)
        total += size * (len(step.filter.bank) + 1)  # a bank: every response, and the sum
        if step.transpose and step.pad_mode != "zeros":
            total += 4 * math.prod(before)  # the edge-padded input (the crop is a view)
        largest = max(largest, size)
    # alpha handling and range mapping make up to two more copies of the largest array
    return total + 2 * largest + (64 << 20)
