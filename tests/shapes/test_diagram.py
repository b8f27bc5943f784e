"""diagram.py (and captions.py): the picture's geometry against the reference loops.

The window of frame k must be exactly what output k reads. The oracle convolves one-hot
inputs with a kernel of ones in tests/reference.py: output k of the one-hot at input cell
(r, c) counts the taps of output k that read (r, c), through padding copies too.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcli import ParameterError
from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.conv.padding import PAD_MODES
from convcli.shapes.coverage import unread_rows
from convcli.shapes.diagram import MAX_CELLS, build_diagram, numbers_for
from tests.conftest import assert_close
from tests.reference import ref_conv2d, ref_conv_transpose2d


def _one_hot_reads(geo) -> list[Counter]:
    """Per output position (row-major), how many taps read each input cell: the
    reference convolution of every one-hot input with a kernel of ones."""
    h, w = geo.input_shape[2:]
    kh, kw = geo.kernel_size
    x = np.eye(h * w).reshape(h * w, 1, h, w)
    ones = np.ones((1, 1, kh, kw))
    options = dict(stride=geo.stride, pads=geo.padding, dilation=geo.dilation)
    if geo.transpose:
        y = ref_conv_transpose2d(x, ones, output_padding=geo.output_padding, **options)
    else:
        y = ref_conv2d(x, ones, mode=geo.padding_mode, **options)
    counts = y[:, 0].reshape(h * w, -1)  # (input cell, output position)
    return [
        Counter({divmod(cell, w): round(n) for cell, n in enumerate(counts[:, k]) if n})
        for k in range(counts.shape[1])
    ]


def _check_every_window(geo) -> None:
    diagram = build_diagram(geo)
    expected = _one_hot_reads(geo)
    assert diagram.frames == len(expected)
    for k in range(diagram.frames):
        assert Counter(diagram.reads(k)) == expected[k], k


pads = st.tuples(*[st.integers(0, 2)] * 4)


@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    pads,
    st.sampled_from(PAD_MODES),
)
def test_the_window_of_frame_k_is_what_output_k_reads(h, w, kh, kw, s, d, pad, mode):
    try:
        geo = conv2d_geometry(
            (1, 1, h, w),
            (1, 1, kh, kw),
            stride=(s, 1),
            padding=pad,
            dilation=(1, d),
            padding_mode=mode,
        )
    except ParameterError:
        assume(False)
    _check_every_window(geo)


@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 3),
    st.integers(0, 2),
    st.booleans(),
)
def test_a_transposed_window_reads_what_the_scatter_adds(h, w, k, s, d, p, op, same):
    try:
        geo = conv_transpose2d_geometry(
            (1, 1, h, w),
            (1, 1, k, k),
            stride=s,
            padding="same" if same else p,
            output_padding=op,
            dilation=d,
        )
    except ParameterError:
        assume(False)
    _check_every_window(geo)


def _rows_never_read(diagram, axis) -> list[int]:
    a = diagram.rows if axis == 0 else diagram.cols
    read = a.read()
    return [a.source[g] for g in range(len(a.kinds)) if a.kinds[g] == "input" and g not in read]


@pytest.mark.parametrize(
    ("size", "k", "s", "d", "pad"),
    [(7, 3, 2, 1, 0), (6, 3, 2, 1, 1), (8, 2, 3, 1, 0), (9, 3, 4, 2, 1), (5, 3, 1, 1, 0)],
)
def test_shaded_rows_are_the_calculators_unread_rows(size, k, s, d, pad):
    geo = conv2d_geometry(
        (1, 1, size, 4), (1, 1, k, 1), stride=(s, 1), padding=pad, dilation=(d, 1)
    )
    diagram = build_diagram(geo)
    missed, first = unread_rows(size, pad, k, s, d, geo.output_shape[2])
    assert _rows_never_read(diagram, 0)[: len(first)] == first
    assert len(_rows_never_read(diagram, 0)) == missed
    shaded = [r for r in range(diagram.grid_shape[0]) if diagram.unread(r, pad)]
    assert (missed > 0) == any(diagram.kind(r, pad) == "input" for r in shaded)
    if missed:
        assert "never read" in " ".join(diagram.notes) and str(first[0]) in diagram.notes[-1]


@pytest.mark.parametrize("mode", PAD_MODES)
def test_padded_cells_copy_what_numpy_pad_copies(mode):
    geo = conv2d_geometry((1, 1, 3, 4), (1, 1, 3, 3), padding=(2, 1, 1, 2), padding_mode=mode)
    x = np.arange(12.0).reshape(3, 4) + 1
    d = build_diagram(geo, numbers=numbers_for(geo, x, np.ones((3, 3))))
    numpy_mode = {"zeros": "constant", "replicate": "edge", "circular": "wrap"}.get(mode, mode)
    padded = np.pad(x, ((2, 1), (1, 2)), mode=numpy_mode)
    shown = [[d.value(r, c) for c in range(d.grid_shape[1])] for r in range(d.grid_shape[0])]
    assert np.array_equal(shown, padded)


CASES = [
    # (input, kernel, options)
    ((5, 5), (3, 3), dict(padding=1, stride=2)),
    ((4, 6), (2, 3), dict(padding="same", padding_mode="reflect")),
    ((7, 7), (3, 3), dict(dilation=2, padding=(1, 0, 2, 1), padding_mode="circular")),
    ((6, 5), (3, 3), dict(stride=(3, 2), padding=2, padding_mode="symmetric")),
]
TRANSPOSED = [
    ((2, 2), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((3, 2), (4, 4), dict(stride=2, padding="same")),
    ((3, 3), (1, 1), dict(stride=2, padding="same")),  # "same" appends a row: negative pad
    ((5, 4), (3, 3), dict(stride=1, padding=(3, 2, 2, 3))),  # more padding than k-1: cut
    ((2, 3), (2, 3), dict(stride=3, dilation=2, padding=(1, 0, 0, 2))),
]


def _geometry(hw, k, options, transpose):
    if transpose:
        return conv_transpose2d_geometry((1, 1, *hw), (1, 1, *k), **options)
    return conv2d_geometry((1, 1, *hw), (1, 1, *k), **options)


@pytest.mark.parametrize(
    ("hw", "k", "options", "transpose"),
    [(*c, False) for c in CASES] + [(*c, True) for c in TRANSPOSED],
)
def test_each_frames_sum_is_the_librarys_output_and_the_reference(hw, k, options, transpose):
    geo = _geometry(hw, k, options, transpose)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 6, size=hw).astype(np.float64)
    weight = rng.integers(-2, 3, size=k).astype(np.float64)
    numbers = numbers_for(geo, x, weight, 0.5, padding=options.get("padding"))
    pads = dict(stride=geo.stride, pads=geo.padding, dilation=geo.dilation)
    if transpose:
        ref = ref_conv_transpose2d(
            x[None, None], weight[None, None], [0.5], output_padding=geo.output_padding, **pads
        )
    else:
        ref = ref_conv2d(x[None, None], weight[None, None], [0.5], mode=geo.padding_mode, **pads)
    assert_close(numbers.y, ref[0, 0], rtol=1e-6)
    d = build_diagram(geo, numbers=numbers, padding_spec=options.get("padding"))
    for frame in range(d.frames):
        total = sum(v * w for v, w in d.terms(frame)) + 0.5
        assert math.isclose(total, numbers.y[d.position(frame)], abs_tol=1e-5), frame
        caption = d.frame_caption(frame)
        assert caption.endswith(f"= {numbers.y[d.position(frame)]:g}"), caption


def test_a_transposed_picture_is_the_stretched_input_with_the_implied_padding():
    # Dumoulin & Visin's figure 4.5 (2x2 input, 3x3 kernel, stride 2, padding 1, plus
    # output_padding 1): 1 zero between the input cells, 1 cell of padding each side,
    # one more after for output_padding.
    geo = conv_transpose2d_geometry(
        (1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1, output_padding=1
    )
    d = build_diagram(geo)
    assert d.rows.kinds == ("pad", "input", "zero", "input", "pad", "pad")
    assert d.grid_shape == (6, 6) and d.output_shape == (4, 4)
    assert d.rows.extra_grid() == {5} and d.extra_output(3, 0) and not d.extra_output(2, 2)
    assert any("output_padding 1 adds" in n for n in d.notes)


def test_transposed_same_appends_what_its_negative_padding_means():
    geo = conv_transpose2d_geometry((1, 1, 3, 3), (1, 1, 1, 1), stride=2, padding="same")
    assert geo.padding == (0, -1, 0, -1)
    d = build_diagram(geo, padding_spec="same")
    assert d.output_shape == (6, 6) and d.rows.kinds[-1] == "pad" and d.rows.extra == 1
    assert any("negative padding after" in n for n in d.notes)


def test_padding_beyond_the_kernel_cuts_cells_no_window_reads():
    geo = conv_transpose2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), padding=3)  # implied -1
    d = build_diagram(geo)
    assert d.grid_shape == (5, 5) and d.output_shape == (1, 1)
    assert d.unread(0, 2) and d.unread(4, 2) and not d.unread(2, 2)
    assert [(t.row, t.col) for t in d.window(0)][0] == (1, 1)
    assert any("cuts that many cells" in n for n in d.notes)


def test_grids_over_the_limit_are_refused_naming_it():
    geo = conv2d_geometry((1, 1, MAX_CELLS - 1, 8), (1, 1, 3, 3), padding=1)
    with pytest.raises(ParameterError, match=f"up to {MAX_CELLS}x{MAX_CELLS} cells.*33x10"):
        build_diagram(geo)
    build_diagram(conv2d_geometry((1, 1, MAX_CELLS - 2, 8), (1, 1, 3, 3), padding=1))


def test_frames_are_capped_with_a_note():
    geo = conv2d_geometry((1, 1, 6, 6), (1, 1, 3, 3))
    d = build_diagram(geo, max_frames=5)
    assert d.frames == 5 and "the first 5 of 16 output positions" in d.notes[-1]


def test_the_notes_hold_the_libraries_formulas_and_the_odd_same_pixel():
    geo = conv2d_geometry((1, 1, 8, 8), (1, 1, 4, 4), padding="same")
    d = build_diagram(geo, padding_spec="same")
    assert "H_out = floor((8 + 1 + 2 - 1*(4-1) - 1) / 1) + 1 = 8" in d.notes
    assert any("the odd one goes at the bottom/right" in n for n in d.notes)
    assert d.rows.kinds.count("pad") == 3 and d.rows.kinds[-2:] == ("pad", "pad")
