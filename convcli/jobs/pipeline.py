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

from convcli.conv.geometry import ConvGeometry, conv2d_geometry, conv_transpose2d_geometry, pair
from convcli.conv.operations import conv2d, conv_transpose2d
from convcli.conv.padding import PAD_MODES, PaddedSource, check_pad_mode
from convcli.errors import KernelError, ParameterError

# map_range lives in ranges.py; the jobs that write files call it as pipeline.map_range.
from convcli.jobs.ranges import extreme, map_range  # noqa: F401
from convcli.jobs.step import (  # Step is reached as pipeline.Step too
    Step,
    effective_weight,
    is_derivative,
    pair_text,
    phase_warning,
)
from convcli.kernels.loader import Filter
from convcli.kernels.parsers import FLOAT32_MAX
from convcli.kernels.shaping import weight_for_channels


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


def prepare(step: Step, channels: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(4-D float32 weight, groups, bias) for an input of ``channels``."""
    f = step.filter
    if not step.transpose and pair(step.output_padding, "output_padding", minimum=0) != (0, 0):
        raise ParameterError(
            f"output_padding {step.output_padding} applies to transposed steps (upsample) "
            f"only; drop it"
        )
    if step.groups is not None and f.weight.ndim != 4:
        raise ParameterError(
            f"groups={step.groups} applies to 4-D (F, C/groups, Hf, Wf) weights; kernel "
            f"{f.source or 'weight'} is {f.weight.ndim}-D (a 2-D kernel already filters each "
            f"channel on its own); drop --groups"
        )
    weight = effective_weight(step)
    shaped = replace(f, weight=weight)
    weight, groups = weight_for_channels(
        shaped, channels, groups=step.groups, transpose=step.transpose
    )
    out_channels = weight.shape[1] * groups if step.transpose else weight.shape[0]
    bias = step.bias if step.bias is not None else f.bias
    if bias is not None:
        bias = np.asarray(bias, np.float64)
        if step.bias is not None and not (np.abs(bias) <= FLOAT32_MAX).all():
            raise ParameterError(
                f"--bias values must be finite numbers of at most {FLOAT32_MAX:.6g} in "
                f"magnitude (float32); got {', '.join(f'{b:g}' for b in bias)}"
            )
        bias = bias.astype(np.float32)
        if bias.size == 1:
            bias = np.repeat(bias, out_channels)
        if bias.shape != (out_channels,):
            if step.bias is not None:
                raise ParameterError(
                    f"--bias takes 1 value or one per output channel ({out_channels}); "
                    f"got {bias.size}"
                )
            raise KernelError(
                f"{f.source or 'the filter'}: its bias has {bias.size} values, but the kernel "
                f"makes {out_channels} output channels here; it needs 1 value or "
                f"{out_channels} (or give --bias)"
            )
    return weight, groups, bias


def _transpose_pad_mode(step: Step) -> str:
    """A transposed step's border handling: ``replicate`` unless asked otherwise."""
    mode = "replicate" if step.pad_mode is None else step.pad_mode
    if mode not in PAD_MODES:
        raise ParameterError(f"pad_mode must be one of {', '.join(PAD_MODES)}; got {mode!r}")
    return mode


def geometry(step: Step, shape: tuple[int, ...]) -> ConvGeometry:
    """The validated geometry of a step on an input of ``shape`` (N, C, H, W)."""
    weight, groups, _ = prepare(step, shape[1])
    return _geometry(step, shape, weight.shape, groups)


def _geometry(step: Step, shape, weight_shape, groups: int) -> ConvGeometry:
    options = dict(stride=step.stride, padding=step.padding, dilation=step.dilation, groups=groups)
    if step.transpose:
        mode = _transpose_pad_mode(step)
        geo = conv_transpose2d_geometry(
            shape, weight_shape, output_padding=step.output_padding, **options
        )
        return replace(geo, padding_mode=mode)
    if step.pad_mode is not None:
        return conv2d_geometry(shape, weight_shape, padding_mode=step.pad_mode, **options)
    # The default: reflect (no dark border), unless the image is too small to mirror
    # that far; then symmetric (the edge pixel repeated), as long as one mirror of the
    # image covers each side. More padding than that would mirror the mirror: a kernel
    # far larger than the image, which is refused.
    geo = conv2d_geometry(shape, weight_shape, padding_mode="zeros", **options)
    top, bottom, left, right = geo.padding
    height, width = shape[2], shape[3]
    if max(top, bottom) < height and max(left, right) < width:
        return replace(geo, padding_mode="reflect")
    if max(top, bottom) <= height and max(left, right) <= width:
        return replace(geo, padding_mode="symmetric")
    kh, kw = weight_shape[2:]
    (dh, dw), needs = geo.dilation, "needs" if step.padding == "same" else "is"
    formula = ""
    if step.padding == "same" and geo.stride == (1, 1):
        formula = (
            f" (dilation*(k-1) = {dh}*({kh}-1) x {dw}*({kw}-1) = "
            f"{dh * (kh - 1)}x{dw * (kw - 1)} in total, half each side)"
        )
    raise ParameterError(
        f"kernel {kh}x{kw} (dilation {pair_text(geo.dilation)}) is too large for the "
        f"{height}x{width} image: padding {step.padding!r} {needs} {geo.padding} (top, bottom, "
        f"left, right){formula}, more than one mirror of the image ({height} rows, {width} "
        f"columns per side) can fill; use --pad-mode zeros, replicate or circular, --padding "
        f"valid with a kernel that fits, or a smaller kernel"
    )


def run_step(x: np.ndarray, step: Step) -> tuple[np.ndarray, ConvGeometry, tuple[int, ...]]:
    """One convolution (or transposed convolution) of (N, C, H, W) float32 pixels, and
    its geometry and weight shape. A filter bank runs each of its K weights and combines
    the responses (by magnitude or abs-sum, then adds the bias); its weight shape is
    (K, F, C, Hf, Wf).
    """
    f = step.filter
    if not f.bank:
        return _run_one(x, step)
    _, _, bias = prepare(step, x.shape[1])
    count = len(f.bank)

    def alone(weight: np.ndarray) -> Step:
        return replace(step, filter=replace(f, weight=weight, bank=(), bias=None), bias=None)

    if f.weight.ndim == 2 and not step.transpose:
        # Every kernel for every channel in one grouped convolution, which reads the input
        # once: output channel c*K + k is kernel k on channel c.
        c, kernel = x.shape[1], f.weight.shape
        stacked = np.stack([np.stack(f.bank)] * c).reshape(c * count, 1, *kernel)
        y, geo, _ = _run_one(x, replace(alone(stacked), groups=c))
        y = y.reshape(len(y), c, count, *y.shape[2:])
        shape = (c, 1, *kernel)
        geo = replace(geo, weight_shape=shape, output_shape=(len(y), c, *y.shape[3:]))
        responses = [y[:, :, k] for k in range(count)]
    else:
        first, geo, shape = _run_one(x, alone(f.bank[0]))
        responses = [first] + [_run_one(x, alone(weight))[0] for weight in f.bank[1:]]
    total = _combine(responses, f.combine)
    if bias is not None:
        total += bias[:, None, None]
    return total, geo, (count, *shape)


def _combine(responses: list[np.ndarray], rule: str) -> np.ndarray:
    """A bank's responses combined value by value: ``sqrt(r1**2 + ...)`` or
    ``|r1| + ...``."""
    if rule == "abs-sum":
        total = np.abs(responses[0])
        for response in responses[1:]:
            total += np.abs(response)
        return total
    with np.errstate(over="ignore"):  # checked below
        total = np.square(responses[0])
        for response in responses[1:]:
            total += np.square(response)
    total = np.sqrt(total, out=total)
    if np.isinf(total).any():  # a square past float32 (|r| > 1.8e19): hypot does not overflow
        total = np.abs(responses[0])
        for response in responses[1:]:
            np.hypot(total, response, out=total)
    return total


def _run_one(x: np.ndarray, step: Step) -> tuple[np.ndarray, ConvGeometry, tuple[int, ...]]:
    weight, groups, bias = prepare(step, x.shape[1])
    geo = _geometry(step, x.shape, weight.shape, groups)
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
    margin = _transpose_margin(weight.shape[2:], geo.stride, geo.dilation)
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


def _transpose_margin(kernel, stride, dilation) -> tuple[int, int]:
    return tuple(
        math.ceil(((k - 1) * d + 1) / s) for k, s, d in zip(kernel, stride, dilation, strict=True)
    )


def _alpha_through(alpha: np.ndarray, step: Step) -> np.ndarray:
    """Alpha through a derivative step unfiltered: sampled where the step's windows are
    centred (a delta at the kernel's centre, same stride, padding and dilation)."""
    kh, kw = step.filter.weight.shape
    delta = np.zeros((kh, kw))
    delta[(kh - 1) // 2, (kw - 1) // 2] = 1.0
    plain = Filter(delta, source=step.filter.source)
    carry = replace(step, filter=plain, bias=None, flip=False, normalize=False, groups=None)
    return _run_one(alpha, carry)[0]


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
        notes.append("the kernel takes the colour channels only; alpha dropped")
    premultiplied = has_alpha and all(s.filter.weight.ndim == 2 for s in steps)
    if premultiplied:
        x = x.copy()
        x[:, :-1] *= x[:, -1:]
    result = Result(x, has_alpha=has_alpha and premultiplied, warnings=notes)
    responded = False  # the colour channels hold a response, not colour times alpha
    for step in steps:
        derivative = premultiplied and is_derivative(step)
        alpha = _alpha_through(x[:, -1:], step) if derivative else None
        x, geo, wshape = run_step(x, step)
        if derivative:
            x[:, -1:] = alpha
            responded = True
        phases = phase_warning(step)
        if phases:
            notes.append(phases)
        if step.pad_mode is None and geo.padding_mode == "symmetric":
            notes.append(
                f"the image is too small to mirror {geo.padding} (top, bottom, left, right) "
                f"pixels without repeating the edge; padded 'symmetric' instead of 'reflect'"
            )
        result.geometries.append(geo)
        result.weight_shapes.append(wshape)
    if premultiplied and not responded:
        alpha = x[:, -1:]
        safe = np.where(alpha > 1e-6, alpha, 1.0)
        x[:, :-1] = np.where(alpha > 1e-6, x[:, :-1] / safe, 0.0)
    result.values = x
    result.minimum = extreme(x, np.fmin)
    result.maximum = extreme(x, np.fmax)
    return result


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
