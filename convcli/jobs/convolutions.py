"""A step as the convolutions it runs on an image of a given shape: its weights prepared
for the input's channels (flipped, normalized, shaped, with the bias), its geometry on
the whole image (the reflect -> symmetric fallback of small images included), and its
plan (:class:`StepPlan`: one convolution, or a filter bank's responses and how they
combine). The in-memory pipeline (:mod:`convcli.jobs.pipeline`) and the blocks of
:mod:`convcli.scale.stages` both run steps through these, so they decide alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from convcli.conv.geometry import (
    ConvGeometry,
    check_output_padding,
    conv2d_geometry,
    conv_transpose2d_geometry,
    pair,
)
from convcli.conv.padding import PAD_MODES
from convcli.errors import KernelError, ParameterError, shown_name
from convcli.jobs.step import Step, effective_weight, pair_text
from convcli.kernels.shaping import weight_for_channels
from convcli.kernels.values import FLOAT32_MAX


def check_step(step: Step) -> None:
    """What a step's options and weight decide whatever the image: checked once, before
    any input is read (a batch's usage error is one error, and waits for no input), and
    again by :func:`prepare` for callers of the library.

    Examples
    --------
    >>> from convcli.kernels.loader import load_filter
    >>> check_step(Step(load_filter("box:3"), groups=2))
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: groups=2 applies to 4-D (F, C/groups, Hf, Wf) weights; \
kernel box:3 is 2-D (a 2-D kernel already filters each channel on its own); drop --groups
    """
    f, name = step.filter, shown_name(step.filter.source or "weight")
    if not step.transpose and pair(step.output_padding, "output_padding", minimum=0) != (0, 0):
        raise ParameterError(
            f"output_padding {step.output_padding} applies to transposed steps (upsample) "
            f"only; drop it"
        )
    if step.transpose:
        check_output_padding(step.output_padding, step.stride, step.dilation)
    if step.groups is not None and f.weight.ndim != 4:
        raise ParameterError(
            f"groups={step.groups} applies to 4-D (F, C/groups, Hf, Wf) weights; kernel "
            f"{name} is {f.weight.ndim}-D (a 2-D kernel already filters each "
            f"channel on its own); drop --groups"
        )
    if step.groups is not None and f.weight.shape[0] % step.groups:
        what = "input channels (C, F/groups, Hf, Wf)" if step.transpose else "filters"
        raise KernelError(
            f"kernel {name} has {f.weight.shape[0]} {what}, not divisible by "
            f"groups={step.groups}; give --groups a divisor of {f.weight.shape[0]}"
        )
    if step.bias is None:
        return
    bias = np.asarray(step.bias, np.float64)
    if not (np.abs(bias) <= FLOAT32_MAX).all():
        raise ParameterError(
            f"--bias values must be finite numbers of at most {FLOAT32_MAX:.6g} in "
            f"magnitude (float32); got {', '.join(f'{b:g}' for b in bias)}"
        )
    outputs = _known_outputs(step)
    if bias.size != 1 and outputs is not None and bias.size != outputs:
        raise ParameterError(
            f"--bias takes 1 value or one per output channel ({outputs}); got {bias.size}"
        )


def _known_outputs(step: Step) -> int | None:
    """The step's output channels when the weight alone decides them (None for a 2-D
    kernel: one output per image channel)."""
    shape = step.filter.weight.shape
    if len(shape) == 3:
        return shape[0] if step.transpose else 1
    if len(shape) == 4:
        return shape[1] * (step.groups or 1) if step.transpose else shape[0]
    return None


def prepare(step: Step, channels: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(4-D float32 weight, groups, bias) for an input of ``channels``."""
    f = step.filter
    check_step(step)
    weight = effective_weight(step)
    shaped = replace(f, weight=weight)
    weight, groups = weight_for_channels(
        shaped, channels, groups=step.groups, transpose=step.transpose
    )
    out_channels = weight.shape[1] * groups if step.transpose else weight.shape[0]
    bias = step.bias if step.bias is not None else f.bias
    if bias is not None:
        bias = np.asarray(bias, np.float32)
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
    return prepare_on(step, shape)[3]


def prepare_on(step: Step, shape: tuple[int, ...]):
    """``(weight, groups, bias, geometry)`` of a plain step on an input of ``shape``."""
    weight, groups, bias = prepare(step, shape[1])
    return weight, groups, bias, _geometry(step, shape, weight.shape, groups)


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


@dataclass(frozen=True)
class StepPlan:
    """One step on an input of a given shape: the convolutions it runs and how their
    responses become its result, decided without computing (in memory and in blocks
    alike, so that both paths run the same convolutions).

    ``convolutions`` are plain steps (one weight each, no bank). A plain step is one
    convolution with its own bias. A filter bank's responses are combined by
    ``combine`` and then ``bias`` is added; with ``stacked`` = K, its one convolution
    holds every kernel for every channel (output channel c*K + k is kernel k on channel
    c). ``geometry`` and ``weight_shape`` are what reports show (a bank's weight shape is
    (K, F, C, Hf, Wf)).
    """

    convolutions: tuple[Step, ...]
    geometry: ConvGeometry
    weight_shape: tuple[int, ...]
    combine: str | None = None
    bias: np.ndarray | None = None
    stacked: int = 0


def plan_step(step: Step, shape: tuple[int, ...]) -> StepPlan:
    """The :class:`StepPlan` of ``step`` on (N, C, H, W) pixels of ``shape``.

    Examples
    --------
    >>> from convcli.kernels.loader import load_filter
    >>> plan = plan_step(Step(load_filter("sobel")), (1, 3, 20, 20))
    >>> len(plan.convolutions), plan.stacked, plan.weight_shape
    (1, 2, (2, 3, 1, 3, 3))
    """
    f = step.filter
    if not f.bank:
        weight, groups, _ = prepare(step, shape[1])
        return StepPlan((step,), _geometry(step, shape, weight.shape, groups), weight.shape)
    _, _, bias = prepare(step, shape[1])
    count = len(f.bank)

    def alone(weight: np.ndarray) -> Step:
        return replace(step, filter=replace(f, weight=weight, bank=(), bias=None), bias=None)

    if f.weight.ndim == 2 and not step.transpose:
        # Every kernel for every channel in one grouped convolution, which reads the input
        # once: output channel c*K + k is kernel k on channel c.
        c, kernel = shape[1], f.weight.shape
        stacked = np.stack([np.stack(f.bank)] * c).reshape(c * count, 1, *kernel)
        one = replace(alone(stacked), groups=c)
        weight, groups, _ = prepare(one, c)
        geo = _geometry(one, shape, weight.shape, groups)
        per_channel = (c, 1, *kernel)
        geo = replace(
            geo, weight_shape=per_channel, output_shape=(shape[0], c, *geo.output_shape[2:])
        )
        return StepPlan((one,), geo, (count, *per_channel), f.combine, bias, count)
    ones = tuple(alone(weight) for weight in f.bank)
    weight, groups, _ = prepare(ones[0], shape[1])
    geo = _geometry(ones[0], shape, weight.shape, groups)
    return StepPlan(ones, geo, (count, *weight.shape), f.combine, bias)


def finish_step(plan: StepPlan, responses: list[np.ndarray]) -> np.ndarray:
    """A step's result from the responses of its convolutions (in memory: the whole
    image's; in blocks: one block's)."""
    if plan.stacked:
        y = responses[0]
        y = y.reshape(len(y), y.shape[1] // plan.stacked, plan.stacked, *y.shape[2:])
        responses = [y[:, :, k] for k in range(plan.stacked)]
    if plan.combine is None:
        return responses[0]
    total = _combine(responses, plan.combine)
    if plan.bias is not None:
        total += plan.bias[:, None, None]
    return total


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


def transpose_margin(kernel, stride, dilation) -> tuple[int, int]:
    return tuple(
        math.ceil(((k - 1) * d + 1) / s) for k, s, d in zip(kernel, stride, dilation, strict=True)
    )
