"""A job's whole pipeline over an image read by region, a region at a time, on demand.

Each stage is a region source (:mod:`convcli.scale.sources`) over the stage before: asked
for a region of its output, it reads exactly the region of its input that this needs
(as libvips does), so any number of steps run on one block without ever holding an
intermediate image, and nothing needs Dask. The stages are those of
:func:`convcli.jobs.pipeline.apply_steps`, built from the same decisions:

- :class:`Channels`: alpha dropped when the first kernel takes the colour channels only;
- :class:`Mapped`: colour times alpha before the steps and divided back after;
- :class:`StepRegions`: one step as :func:`~convcli.jobs.convolutions.plan_step` plans it
  (a plain convolution, a filter bank's responses combined, alpha carried through a
  derivative step), each convolution run by :mod:`convcli.scale.blocks` on the step's
  window, padded through the one padding model on the *whole* image's geometry (so the
  reflect -> symmetric fallback, a transposed step's edge padding and its crop are the
  whole image's, whatever the block);
- :class:`Padded`: an input seen through its padding (a transposed step's edge padding).

Whole-image quantities (min, max, clipped counts, ``--range normalize``) are reductions
over the final blocks: :mod:`convcli.scale.streaming`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from convcli.conv import engines, gather
from convcli.conv.engines.correlate import choose_path
from convcli.conv.geometry import ConvGeometry, conv_transpose2d_geometry
from convcli.conv.padding import check_pad_mode, source_of
from convcli.jobs import convolutions, pipeline
from convcli.jobs.pipeline import Step
from convcli.scale.blocks import conv2d_block, conv_transpose2d_block
from convcli.scale.plan import _runs, block_axis, tile_grid
from convcli.scale.sources import RegionSource, read_window


class Stage:
    """A region source computed from another: float32 (N, C, H, W)."""

    dtype = np.dtype(np.float32)
    shape: tuple[int, int, int, int]

    def read_region(self, samples: slice, channels: slice, rows: slice, cols: slice):
        raise NotImplementedError


class Channels(Stage):
    """The first ``keep`` channels of ``source`` (alpha dropped)."""

    def __init__(self, source: RegionSource, keep: int) -> None:
        self.source, self.keep = source, keep
        self.shape = (source.shape[0], keep, *source.shape[2:])

    def read_region(self, samples, channels, rows, cols):
        wanted = range(self.keep)[channels]
        return self.source.read_region(samples, slice(wanted.start, wanted.stop), rows, cols)


class Frame(Stage):
    """Sample ``index`` of ``source`` alone (an output per frame)."""

    def __init__(self, source: RegionSource, index: int) -> None:
        self.source, self.index = source, index
        self.shape = (1, *source.shape[1:])

    def read_region(self, samples, channels, rows, cols):
        at = slice(self.index + samples.start, self.index + samples.stop)
        return self.source.read_region(at, channels, rows, cols)


class Mapped(Stage):
    """Each region of ``source``, every channel, through ``func`` (value by value, in
    place): :func:`~convcli.jobs.pipeline.premultiply` or
    :func:`~convcli.jobs.pipeline.unpremultiply`."""

    def __init__(self, source: RegionSource, func) -> None:
        self.source, self.func, self.shape = source, func, tuple(source.shape)

    def read_region(self, samples, channels, rows, cols):
        every = slice(0, self.shape[1])
        region = np.array(self.source.read_region(samples, every, rows, cols), np.float32)
        return self.func(region)[:, channels]


class Padded(Stage):
    """``source`` padded by ``pads`` (top, bottom, left, right) in ``mode``: each region
    reads the source rows and columns it shows, once, through the padding model."""

    def __init__(self, source: RegionSource, pads: tuple[int, int, int, int], mode: str) -> None:
        self.source, self.pads, self.mode = source, pads, mode
        n, c, h, w = source.shape
        self.shape = (n, c, h + pads[0] + pads[1], w + pads[2] + pads[3])

    def read_region(self, samples, channels, rows, cols):
        n, c, h, w = self.source.shape
        row_map = source_of(np.arange(rows.start, rows.stop) - self.pads[0], h, self.mode)
        col_map = source_of(np.arange(cols.start, cols.stop) - self.pads[2], w, self.mode)
        row_runs, col_runs = _runs(np.unique(row_map)), _runs(np.unique(col_map))
        window = read_window(self.source, (samples.start, samples.stop), row_runs, col_runs)
        packed_rows = np.searchsorted(np.unique(row_map), row_map)
        packed_cols = np.searchsorted(np.unique(col_map), col_map)
        return window[:, channels][:, :, packed_rows][..., packed_cols]


@dataclass
class _Convolution:
    """One plain convolution of a step: its weight, groups, bias and whole-image geometry."""

    weight: np.ndarray
    groups: int
    bias: np.ndarray | None
    geometry: ConvGeometry


class StepRegions(Stage):
    """One step of a job (:class:`~convcli.jobs.pipeline.Step`) over ``source``.

    ``carry_alpha``: a derivative step on premultiplied colour, whose alpha channel is
    the input's alpha sampled at the windows' centres (not filtered).
    """

    def __init__(self, source: RegionSource, step: Step, *, carry_alpha: bool = False) -> None:
        shape = tuple(source.shape)
        plan = convolutions.plan_step(step, shape)
        # What the workers need: the prepared weights, not the steps and their filters.
        self.plan = replace(plan, convolutions=())
        self.settings = engines.settings()  # the caller's path and tile budget, in any worker
        self.convolutions = [_convolution(one, shape) for one in plan.convolutions]
        alpha = (shape[0], 1, *shape[2:])
        self.carrier = _convolution(pipeline.alpha_carrier(step), alpha) if carry_alpha else None
        first = self.convolutions[0].geometry
        self.transposed = first.transpose
        self.source = source
        if self.transposed and first.padding_mode != "zeros":
            # As in memory: the input padded (edge-replicated by default) by the margin
            # first, so that borders see real neighbours; the output then cropped.
            margin = convolutions.transpose_margin(first.kernel_size, first.stride, first.dilation)
            pads = (margin[0], margin[0], margin[1], margin[1])
            check_pad_mode(first.padding_mode, pads, shape[2:])
            self.source = Padded(source, pads, first.padding_mode)
            self.offset = (margin[0] * first.stride[0], margin[1] * first.stride[1])
            self.convolutions = [
                _convolution(one, shape, padded=self.source.shape) for one in plan.convolutions
            ]
        else:
            self.offset = (0, 0)
        self.shape = tuple(self.plan.geometry.output_shape)
        self.unit = (1, 1) if self.transposed else _engine_grid(self.convolutions[0])

    def read_region(self, samples, channels, rows, cols):
        # Computed over the engine's whole tiles around the region, as the whole image
        # is: the same sums in the same order, bit for bit, wherever a block starts.
        (uh, uw), (height, width) = self.unit, self.shape[2:]
        r0, r1 = _on_grid(rows.start, rows.stop, uh, height)
        c0, c1 = _on_grid(cols.start, cols.stop, uw, width)
        y = self._compute(samples, slice(r0, r1), slice(c0, c1))
        return y[:, channels, rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]

    def _compute(self, samples, rows, cols):
        geo = self.convolutions[0].geometry
        oy, ox = self.offset
        rows_axis, cols_axis = (
            block_axis(geo, 0, rows.start + oy, rows.stop + oy),
            block_axis(geo, 1, cols.start + ox, cols.stop + ox),
        )
        span = (samples.start, samples.stop)
        reads = bool(rows_axis.runs and cols_axis.runs)
        window = read_window(self.source, span, rows_axis.runs, cols_axis.runs) if reads else None
        responses = [
            self._run(conv, window, rows_axis, cols_axis, span) for conv in self.convolutions
        ]
        y = convolutions.finish_step(self.plan, responses)
        if self.carrier is not None:
            alpha = window[:, -1:] if window is not None else None
            y[:, -1:] = self._run(self.carrier, alpha, rows_axis, cols_axis, span)
        return y

    def _run(self, conv: _Convolution, window, rows_axis, cols_axis, span) -> np.ndarray:
        geo = conv.geometry
        if not geo.transpose:
            if window is None:  # wholly in the zero padding
                window = np.zeros((span[1] - span[0], geo.input_shape[1], 0, 0), np.float32)
            return conv2d_block(
                window,
                conv.weight,
                conv.bias,
                rows_axis,
                cols_axis,
                groups=conv.groups,
                settings=self.settings,
            )
        return conv_transpose2d_block(
            window,
            conv.weight,
            conv.bias,
            rows_axis,
            cols_axis,
            span[1] - span[0],
            stride=geo.stride,
            dilation=geo.dilation,
            groups=conv.groups,
            dtype=np.dtype(np.float32),
            settings=self.settings,
        )


def _convolution(one: Step, shape, *, padded=None) -> _Convolution:
    """A plain step's prepared weight and its geometry on ``shape``; for a transposed step
    over its input padded to ``padded``, the plain transposed geometry there."""
    weight, groups, bias, geo = convolutions.prepare_on(one, shape)
    weight = weight.astype(np.float32, copy=False)
    if padded is not None:
        geo = conv_transpose2d_geometry(
            padded,
            weight.shape,
            stride=one.stride,
            padding=one.padding,
            output_padding=one.output_padding,
            dilation=one.dilation,
            groups=groups,
        )
    elif not geo.transpose:  # as the in-memory conv2d: steps that only multiply 0 are 1
        geo = gather.without_idle_steps(geo)
    return _Convolution(weight, groups, bias, geo)


def _engine_grid(conv: _Convolution) -> tuple[int, int]:
    """The tile grid of the engine the whole image runs on
    (:func:`convcli.scale.plan.tile_grid`: the output rows and columns of a tile): FFT
    tiles, the rows engine's tile width; 1 for the separable engine, the same at any cut."""
    geo = conv.geometry
    stride = gather.geometry(geo, *gather.maps(geo)).stride
    engine = choose_path(conv.weight, conv.groups, np.float32, stride)
    return tile_grid(geo, engine)[:2]


def _on_grid(start: int, stop: int, unit: int, size: int) -> tuple[int, int]:
    """``[start, stop)`` widened to whole tiles of ``unit`` (the last one may be cut by
    the image's end), and one tile more before a lone last one: an FFT sized for a window
    narrower than a tile would round differently.

    Examples
    --------
    >>> _on_grid(300, 320, 226, 600), _on_grid(460, 470, 226, 600), _on_grid(3, 5, 1, 9)
    ((226, 452), (226, 600), (3, 5))
    """
    low, high = start // unit * unit, min(size, -(-stop // unit) * unit)
    if high - low < unit and low > 0:
        low -= unit
    return low, high


@dataclass
class Pipeline:
    """A job's steps over a region source: the final stage and what reports need."""

    final: RegionSource
    has_alpha: bool  # the result's last channel is alpha
    geometries: list[ConvGeometry] = field(default_factory=list)
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build(source: RegionSource, steps: list[Step], *, has_alpha: bool) -> Pipeline:
    """The stages of :func:`convcli.jobs.pipeline.apply_steps` over ``source``, validated
    on the whole image (a step that does not fit it fails here, before any block).

    Examples
    --------
    >>> from convcli.kernels import load_filter
    >>> from convcli.scale.sources import ArraySource
    >>> x = np.random.default_rng(0).random((1, 4, 20, 30), dtype=np.float32)
    >>> steps = [Step(load_filter("gaussian:5")), Step(load_filter("sobel"))]
    >>> built = build(ArraySource(x), steps, has_alpha=True)
    >>> whole = pipeline.apply_steps(x, steps, has_alpha=True).values
    >>> part = built.final.read_region(slice(0, 1), slice(0, 4), slice(5, 12), slice(0, 30))
    >>> bool(np.allclose(part, whole[:, :, 5:12], atol=1e-6)), built.weight_shapes[1]
    (True, (2, 4, 1, 3, 3))
    """
    stage: RegionSource = source
    notes: list[str] = []
    channels = source.shape[1]
    if pipeline.drops_alpha(steps, channels, has_alpha=has_alpha):
        stage, has_alpha = Channels(stage, channels - 1), False
        notes.append(pipeline.DROPPED_ALPHA)
    premultiplied = pipeline.premultiplies(steps, has_alpha=has_alpha)
    if premultiplied:
        stage = Mapped(stage, pipeline.premultiply)
    built = Pipeline(stage, has_alpha and premultiplied, warnings=notes)
    responded = False
    for step in steps:
        derivative = premultiplied and pipeline.is_derivative(step)
        stage = StepRegions(stage, step, carry_alpha=derivative)
        responded = responded or derivative
        built.geometries.append(stage.plan.geometry)
        built.weight_shapes.append(stage.plan.weight_shape)
        notes += pipeline.step_notes(step, stage.plan.geometry)
    if premultiplied and not responded:
        stage = Mapped(stage, pipeline.unpremultiply)
    built.final = stage
    return built
