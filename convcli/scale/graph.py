"""The Dask graph of a plan: one layer, one task per output block.

Each task reads the block's window and runs the block (:mod:`convcli.scale.blocks`).
Where the window comes from:

- a region source (a NumPy array is wrapped as one): the source object is one key of
  the layer, and each task calls its ``read_region`` for the block's runs only, inside
  the worker; blocks share nothing, so memory stays flat and no worker sends pixels to
  another;
- a Dask array: each task depends on exactly the input chunks its runs overlap and packs
  their slices into the window (:func:`convcli.scale.sources.pack`), however the input
  is chunked; nothing is rechunked or materialized whole.

The weight and bias are keys too, so that a distributed scheduler ships them to a
worker once, not with every task. The layer is written as a plain dict (thousands of
blocks take milliseconds), never built block by block from delayed objects.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable

import numpy as np

from convcli.errors import DependencyError

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as err:
    raise DependencyError(
        f"convcli.scale needs Dask, which could not be imported ({err}): "
        f"pip install 'convcli[dask]'"
    ) from None

from convcli.conv import engines
from convcli.scale.blocks import conv2d_block, conv_transpose2d_block
from convcli.scale.plan import Block, Plan, Runs
from convcli.scale.sources import RegionSource, pack, read_window


def _overlaps(chunks: tuple[int, ...], runs: Runs) -> list[tuple[int, slice, slice]]:
    """``(chunk, slice in it, slice in the packed window)`` for each chunk a run overlaps."""
    ends = list(itertools.accumulate(chunks))
    found, offset = [], 0
    for a, b in runs:
        for index in range(bisect.bisect_right(ends, a), len(chunks)):
            start = ends[index] - chunks[index]
            lo, hi = max(a, start), min(b, ends[index])
            if lo >= hi:
                break
            found.append(
                (index, slice(lo - start, hi - start), slice(offset + lo - a, offset + hi - a))
            )
        offset += b - a
    return found


def _pack_tasks(x: da.Array, plan: Plan) -> Callable[[Block], tuple]:
    """For each block, a task packing its window from the chunks of ``x`` it overlaps
    (the overlaps worked out once per row band, column band and sample range)."""
    samples = {s: _overlaps(x.chunks[0], (s,)) for s in plan.samples}
    channels = _overlaps(x.chunks[1], ((0, x.shape[1]),))
    rows = [_overlaps(x.chunks[2], axis.runs) for axis in plan.rows]
    cols = [_overlaps(x.chunks[3], axis.runs) for axis in plan.cols]

    def task(block: Block) -> tuple:
        per_axis = (samples[block.samples], channels, rows[block.index[1]], cols[block.index[2]])
        shape = tuple(sum(t.stop - t.start for _, _, t in pieces) for pieces in per_axis)
        places, keys = [], []
        for combination in itertools.product(*per_axis):
            keys.append((x.name, *(index for index, _, _ in combination)))
            places.append(
                (tuple(t for _, _, t in combination), tuple(p for _, p, _ in combination))
            )
        return (pack, shape, x.dtype, places, *keys)

    return task


def block_array(
    plan: Plan,
    x: da.Array | RegionSource,
    weight: np.ndarray,
    bias: np.ndarray | None,
    dtype: np.dtype,
) -> da.Array:
    """The lazy result of ``plan`` over ``x``: one task per block, in one graph layer.

    The engine settings in force now (a forced path, a tile budget) go into the tasks,
    so blocks run as the caller would have run the whole image, wherever they run.
    """
    geo, settings = plan.geometry, engines.settings()
    token = tokenize(x, weight, bias, plan.chunks, repr(geo), settings)
    kind = "conv_transpose2d" if geo.transpose else "conv2d"
    name, weight_key, bias_key = f"{kind}-{token}", f"weight-{token}", f"bias-{token}"
    layer: dict = {weight_key: weight, bias_key: bias}
    if isinstance(x, da.Array):
        dependencies = [x]
        window = _pack_tasks(x, plan)
    else:
        dependencies, source_key = [], f"source-{token}"
        layer[source_key] = x

        def window(block: Block) -> tuple:
            return (read_window, source_key, block.samples, block.rows.runs, block.cols.runs)

    def common(block: Block) -> tuple:
        return weight_key, bias_key, block.rows, block.cols

    if geo.transpose:
        run = functools.partial(
            conv_transpose2d_block,
            stride=geo.stride,
            dilation=geo.dilation,
            groups=geo.groups,
            dtype=dtype,
            settings=settings,
        )
    else:
        run = functools.partial(conv2d_block, groups=geo.groups, settings=settings)
    for block in plan.blocks():
        if geo.transpose:
            # A transposed block that receives nothing reads nothing: zeros plus bias.
            reads = block.rows.runs and block.cols.runs
            samples = block.samples[1] - block.samples[0]
            args = (window(block) if reads else None, *common(block), samples)
        else:
            args = (window(block), *common(block))
        layer[(name, block.index[0], 0, *block.index[1:])] = (run, *args)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    return da.Array(graph, name, plan.chunks, meta=np.empty((0, 0, 0, 0), dtype))
