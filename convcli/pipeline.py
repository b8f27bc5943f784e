"""From an image and filter options to output pixels: what ``apply`` and ``upsample`` do.

- Alpha is filtered premultiplied (colour times alpha), so transparent pixels
  do not bleed their colour into their neighbours; colour is divided back after.
- Several kernels apply in order, each on the previous result.
- Values outside [0, 1] become pixels by ``clip`` (counted), ``abs`` (then clip)
  or ``normalize`` (stretch min..max to 0..1).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from convcli.conv import conv2d, conv_transpose2d
from convcli.errors import ParameterError
from convcli.geometry import ConvGeometry, conv2d_geometry, conv_transpose2d_geometry
from convcli.kernels import Filter, flip_kernel, normalize_kernel, weight_for_channels

RANGES = ("clip", "abs", "normalize")


@dataclass(frozen=True)
class Step:
    """One filter with its resolved options (command line over file over defaults)."""

    filter: Filter
    stride: int | tuple[int, int] = 1
    padding: object = "same"
    dilation: int | tuple[int, int] = 1
    groups: int | None = None
    pad_mode: str = "reflect"
    flip: bool = False
    normalize: bool = False
    bias: tuple[float, ...] | None = None
    output_padding: int | tuple[int, int] = 0
    transpose: bool = False


@dataclass
class Result:
    """Output pixels and, per sample, what the report needs."""

    pixels: np.ndarray
    has_alpha: bool = False
    geometries: list[ConvGeometry] = field(default_factory=list)
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)
    minimum: np.ndarray | None = None
    maximum: np.ndarray | None = None
    clipped_low: np.ndarray | None = None
    clipped_high: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def prepare(step: Step, channels: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(4-D float32 weight, groups, bias) for an input of ``channels``."""
    f = step.filter
    weight = f.weight
    if step.flip:
        weight = flip_kernel(weight)
    if step.normalize:
        weight = normalize_kernel(weight)
    shaped = Filter(weight, f.bias, f.options, f.description, f.source)
    weight, groups = weight_for_channels(shaped, channels, groups=step.groups)
    if step.transpose and f.weight.ndim == 4:
        out_channels = weight.shape[1] * groups
    else:
        out_channels = weight.shape[0]
    bias = step.bias if step.bias is not None else f.bias
    if bias is not None:
        bias = np.asarray(bias, np.float32)
        if bias.size == 1:
            bias = np.repeat(bias, out_channels)
        if bias.shape != (out_channels,):
            raise ParameterError(
                f"--bias takes 1 value or one per output channel ({out_channels}); got {bias.size}"
            )
    return weight, groups, bias


def geometry(step: Step, shape: tuple[int, ...]) -> ConvGeometry:
    """The validated geometry of a step on an input of ``shape`` (N, C, H, W)."""
    weight, groups, _ = prepare(step, shape[1])
    if step.transpose:
        return conv_transpose2d_geometry(
            shape,
            weight.shape,
            stride=step.stride,
            padding=step.padding,
            output_padding=step.output_padding,
            dilation=step.dilation,
            groups=groups,
        )
    return conv2d_geometry(
        shape,
        weight.shape,
        stride=step.stride,
        padding=step.padding,
        dilation=step.dilation,
        groups=groups,
        padding_mode=step.pad_mode,
    )


def run_step(x: np.ndarray, step: Step) -> tuple[np.ndarray, ConvGeometry, tuple[int, ...]]:
    """One convolution (or transposed convolution) of (N, C, H, W) float32 pixels."""
    weight, groups, bias = prepare(step, x.shape[1])
    geo = geometry(step, x.shape)
    if not step.transpose:
        y = conv2d(
            x,
            weight,
            bias,
            stride=step.stride,
            padding=step.padding,
            dilation=step.dilation,
            groups=groups,
            padding_mode=step.pad_mode,
        )
        return y, geo, weight.shape
    # Edge-replicate before a transposed convolution so that borders see real
    # neighbours (a constant image stays constant), then cut what that added.
    margin = _transpose_margin(weight.shape[2:], geo.stride, geo.dilation)
    padded = np.pad(x, ((0, 0), (0, 0), (margin[0],) * 2, (margin[1],) * 2), mode="edge")
    y = conv_transpose2d(
        padded,
        weight,
        bias,
        stride=step.stride,
        padding=step.padding,
        output_padding=step.output_padding,
        dilation=step.dilation,
        groups=groups,
    )
    (sh, sw), (oh, ow) = geo.stride, geo.output_shape[2:]
    y = y[:, :, margin[0] * sh : margin[0] * sh + oh, margin[1] * sw : margin[1] * sw + ow]
    return np.ascontiguousarray(y), geo, weight.shape


def _transpose_margin(kernel, stride, dilation) -> tuple[int, int]:
    return tuple(
        math.ceil(((k - 1) * d + 1) / s) for k, s, d in zip(kernel, stride, dilation, strict=True)
    )


def apply_steps(
    pixels: np.ndarray, steps: list[Step], *, has_alpha: bool, value_range: str = "clip"
) -> Result:
    """Run every step on (N, C, H, W) pixels, premultiplying alpha, then map the range.

    Per-channel (2-D) kernels filter alpha too, premultiplied. A channel-mixing
    (3-D/4-D) weight that takes the colour channels only drops the alpha channel.
    """
    if value_range not in RANGES:
        raise ParameterError(f"--range must be one of {', '.join(RANGES)}; got {value_range!r}")
    x = pixels
    notes: list[str] = []
    first = steps[0].filter.weight
    if has_alpha and first.ndim > 2 and _channels_taken(steps[0]) == x.shape[1] - 1:
        x, has_alpha = x[:, :-1], False
        notes.append("the kernel takes the colour channels only; alpha dropped")
    premultiplied = has_alpha and all(s.filter.weight.ndim == 2 for s in steps)
    if premultiplied:
        x = x.copy()
        x[:, :-1] *= x[:, -1:]
    result = Result(x, has_alpha=has_alpha and premultiplied, warnings=notes)
    for step in steps:
        x, geo, wshape = run_step(x, step)
        result.geometries.append(geo)
        result.weight_shapes.append(wshape)
    if premultiplied:
        alpha = x[:, -1:]
        safe = np.where(alpha > 1e-6, alpha, 1.0)
        x[:, :-1] = np.where(alpha > 1e-6, x[:, :-1] / safe, 0.0)
    result.minimum = _extreme(x, np.min, np.nanmin)
    result.maximum = _extreme(x, np.max, np.nanmax)
    result.pixels = map_range(x, value_range, result)
    return result


def _extreme(x: np.ndarray, fast, nan_aware) -> np.ndarray:
    """Per-sample min or max; the NaN-aware (slower) reduction only when NaN is there."""
    if x.size == 0:
        return np.zeros(len(x))
    values = fast(x, axis=(1, 2, 3))
    if np.isnan(values).any():
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN sample
            values = nan_aware(x, axis=(1, 2, 3))
    return values


def _channels_taken(step: Step) -> int:
    weight = step.filter.weight
    return weight.shape[0] if weight.ndim == 3 else weight.shape[1] * (step.groups or 1)


def map_range(x: np.ndarray, value_range: str, result: Result) -> np.ndarray:
    """Turn values into [0, 1] pixels; count per sample what clipping changes."""
    axes = (1, 2, 3)
    if value_range == "abs":
        x = np.abs(x)
    elif value_range == "normalize":
        low = np.nanmin(x, axis=axes, keepdims=True)
        high = np.nanmax(x, axis=axes, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        x = np.where(high > low, (x - low) / span, 0.0).astype(np.float32)
    result.clipped_low = np.count_nonzero(x < 0, axis=axes)
    result.clipped_high = np.count_nonzero(x > 1, axis=axes)
    # x is this pipeline's own result (never the caller's array): clip it in place.
    return np.clip(x, 0.0, 1.0, out=x)


def estimate_bytes(shape: tuple[int, ...], steps: list[Step]) -> int:
    """Working set of a job: the input, every step's output and tile buffers (float32)."""
    total = 4 * math.prod(shape)
    largest = total
    for step in steps:
        shape = geometry(step, shape).output_shape
        size = 4 * math.prod(shape)
        total += size
        largest = max(largest, size)
    # range mapping and alpha handling make up to two more copies of the largest array
    return total + 2 * largest + (64 << 20)
