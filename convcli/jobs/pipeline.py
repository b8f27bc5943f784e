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

import numpy as np

from convcli.conv.geometry import ConvGeometry
from convcli.conv.operations import conv2d, conv_transpose2d
from convcli.conv.padding import PaddedSource, check_pad_mode

# map_range lives in ranges.py; the jobs that write files call it as pipeline.map_range.
from convcli.jobs.convolutions import (  # noqa: F401 - prepare: reached as pipeline.prepare
    finish_step,
    geometry,
    plan_step,
    prepare,
    prepare_on,
    transpose_margin,
)
from convcli.jobs.ranges import extreme, map_range  # noqa: F401
from convcli.jobs.step import (  # Step is reached as pipeline.Step too
    Step,
    is_derivative,
    phase_warning,
)
from convcli.kernels.loader import Filter


@dataclass
class Result:
    """The filtered values (raw floats, alpha divided back out) and what reports need."""

    values: np.ndarray
    has_alpha: bool = False
    geometries: list[ConvGeometry] = field(default_factory=list)
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)
    minimum: np.ndarray | None = None  # per sample, NaN ignored
    maximum: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def run_step(x: np.ndarray, step: Step) -> tuple[np.ndarray, ConvGeometry, tuple[int, ...]]:
    """One convolution (or transposed convolution) of (N, C, H, W) float32 pixels, and
    its geometry and weight shape. A filter bank runs each of its K weights and combines
    the responses (by magnitude or abs-sum, then adds the bias); its weight shape is
    (K, F, C, Hf, Wf).
    """
    plan = plan_step(step, x.shape)
    responses = [_run_one(x, one)[0] for one in plan.convolutions]
    return finish_step(plan, responses), plan.geometry, plan.weight_shape


def _run_one(x: np.ndarray, step: Step) -> tuple[np.ndarray, ConvGeometry, tuple[int, ...]]:
    weight, groups, bias, geo = prepare_on(step, x.shape)
    if not step.transpose:
        y = conv2d(
            x,
            weight,
            bias,
            stride=geo.stride,
            padding=geo.padding,
            dilation=geo.dilation,
            groups=groups,
            padding_mode=geo.padding_mode,
        )
        return y, geo, weight.shape
    transposed = dict(
        stride=step.stride,
        # The spec, not geo.padding: transposed "same" resolves to a negative bottom/right
        # (rows appended), which only the spec expresses.
        padding=step.padding,
        output_padding=step.output_padding,
        dilation=step.dilation,
        groups=groups,
    )
    if geo.padding_mode == "zeros":  # exactly torch.nn.functional.conv_transpose2d
        return conv_transpose2d(x, weight, bias, **transposed), geo, weight.shape
    # Pad the input first (edge-replicated by default) so that borders see real
    # neighbours (a constant image stays constant), then cut what that added.
    margin = transpose_margin(weight.shape[2:], geo.stride, geo.dilation)
    pads = (margin[0], margin[0], margin[1], margin[1])
    check_pad_mode(geo.padding_mode, pads, x.shape[2:])
    source = PaddedSource(x, pads, geo.padding_mode)
    padded = source.window(0, source.shape[-2], 0, source.shape[-1])
    y = conv_transpose2d(padded, weight, bias, **transposed)
    (sh, sw), (oh, ow) = geo.stride, geo.output_shape[2:]
    # A view: the padded result is only the margin's rows and columns larger, and a
    # contiguous copy of a 4096x4096 RGB result cost 0.14 s and 200 MB more at its peak.
    y = y[:, :, margin[0] * sh : margin[0] * sh + oh, margin[1] * sw : margin[1] * sw + ow]
    return y, geo, weight.shape


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
    x[:, :-1] = np.where(alpha > 1e-6, x[:, :-1] / safe, 0.0)
    return x


def step_notes(step: Step, geo: ConvGeometry) -> list[str]:
    """What a step's result should be read with: upsampling's stride phases, and the
    symmetric padding of an image too small to mirror."""
    notes = []
    phases = phase_warning(step)
    if phases:
        notes.append(phases)
    if step.pad_mode is None and geo.padding_mode == "symmetric":
        notes.append(
            f"the image is too small to mirror {geo.padding} (top, bottom, left, right) "
            f"pixels without repeating the edge; padded 'symmetric' instead of 'reflect'"
        )
    return notes


def apply_steps(pixels: np.ndarray, steps: list[Step], *, has_alpha: bool) -> Result:
    """Run every step on (N, C, H, W) pixels, alpha premultiplied; return raw values.

    Per-channel (2-D) kernels filter alpha too, premultiplied. A derivative step
    (:func:`is_derivative`: a gradient magnitude, sobel-x, a Laplacian) filters the
    premultiplied colour (so a shape's outline is an edge) and keeps alpha as it was;
    its result is a response, not a colour, and is not divided by alpha. A channel-mixing
    (3-D/4-D) weight that takes the colour channels only drops the alpha channel.
    :func:`map_range` then turns the values into pixels.
    """
    x = pixels
    notes: list[str] = []
    if drops_alpha(steps, x.shape[1], has_alpha=has_alpha):
        x, has_alpha = x[:, :-1], False
        notes.append(DROPPED_ALPHA)
    premultiplied = premultiplies(steps, has_alpha=has_alpha)
    if premultiplied:
        x = premultiply(x.copy())
    result = Result(x, has_alpha=has_alpha and premultiplied, warnings=notes)
    responded = False  # the colour channels hold a response, not colour times alpha
    for step in steps:
        derivative = premultiplied and is_derivative(step)
        alpha = _run_one(x[:, -1:], alpha_carrier(step))[0] if derivative else None
        x, geo, wshape = run_step(x, step)
        if derivative:
            x[:, -1:] = alpha
            responded = True
        notes += step_notes(step, geo)
        result.geometries.append(geo)
        result.weight_shapes.append(wshape)
    if premultiplied and not responded:
        unpremultiply(x)
    result.values = x
    result.minimum = extreme(x, np.fmin)
    result.maximum = extreme(x, np.fmax)
    return result


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
