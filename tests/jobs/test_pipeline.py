"""pipeline.py: the shape rule applied, alpha, ranges, upsampling, memory estimate."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError, ParameterError
from convcli.jobs.pipeline import Step, apply_steps, estimate_bytes, map_range, output_shape
from convcli.kernels.filters import Filter, filter_bank
from convcli.kernels.loader import load_filter
from tests.reference import ref_conv2d


def test_range_modes_and_clip_counts():
    x = np.array([[[[-0.5, 0.25, 1.5]]]], np.float32)
    identity = [Step(load_filter("identity"), padding=0)]
    result = apply_steps(x, identity, has_alpha=False)
    assert result.values.ravel().tolist() == [-0.5, 0.25, 1.5]  # raw until mapped
    assert result.minimum.tolist() == [-0.5] and result.maximum.tolist() == [1.5]
    pixels, low, high = map_range(result.values.copy(), "clip")
    assert pixels.ravel().tolist() == [0.0, 0.25, 1.0]
    assert low.tolist() == [1] and high.tolist() == [1]
    assert map_range(x.copy(), "abs")[0].ravel().tolist() == [0.5, 0.25, 1.0]
    np.testing.assert_allclose(map_range(x.copy(), "normalize")[0].ravel(), [0, 0.375, 1])
    raw, low, high = map_range(x.copy(), None)
    assert raw.ravel().tolist() == [-0.5, 0.25, 1.5] and low.tolist() == high.tolist() == [0]
    with pytest.raises(ParameterError, match="--range"):
        map_range(x, "wrap")


def test_per_sample_statistics_in_a_batch():
    x = np.stack([np.full((1, 4, 4), 2.0), np.full((1, 4, 4), 0.5)]).astype(np.float32)
    r = apply_steps(x, [Step(load_filter("box:3"))], has_alpha=False)
    assert map_range(r.values, "clip")[2].tolist() == [16, 0]


def test_alpha_premultiplied_and_dropped_for_colour_only_weights():
    rgba = np.zeros((1, 4, 1, 4), np.float32)
    rgba[0, 0, 0, :2] = 1.0  # red where opaque
    rgba[0, 3, 0, :2] = 1.0
    rgba[0, 1, 0, 2:] = 1.0  # green where transparent
    r = apply_steps(
        rgba, [Step(load_filter("1 1 1"), padding="same", pad_mode="replicate")], has_alpha=True
    )
    assert r.values[0, 1].max() == 0  # no green came through
    luma = Filter(np.array([[[0.3]], [[0.6]], [[0.1]]]))
    r = apply_steps(rgba, [Step(luma)], has_alpha=True)
    assert r.values.shape == (1, 1, 1, 4) and "alpha dropped" in r.warnings[0]


def test_bias_broadcast_and_count_check():
    x = np.zeros((1, 3, 2, 2), np.float32)
    r = apply_steps(x, [Step(load_filter("identity"), bias=(0.25,))], has_alpha=False)
    assert np.all(r.values == 0.25)
    with pytest.raises(ParameterError, match="--bias takes 1 value or one per output channel"):
        apply_steps(x, [Step(load_filter("identity"), bias=(0.1, 0.2))], has_alpha=False)


@pytest.mark.parametrize("factor", [2, 3])
def test_upsample_steps_keep_constants_and_size(factor):
    x = np.full((1, 2, 5, 6), 0.4, np.float32)
    for name in ("bilinear", "nearest"):
        step = Step(load_filter(f"{name}:{factor}"), stride=factor, transpose=True)
        r = apply_steps(x, [step], has_alpha=False)
        assert r.values.shape == (1, 2, 5 * factor, 6 * factor)
        np.testing.assert_allclose(r.values, 0.4, atol=1e-6)


def test_nearest_upsampling_replicates_exactly():
    x = np.random.default_rng(0).random((1, 1, 3, 4)).astype(np.float32)
    r = apply_steps(x, [Step(load_filter("nearest:2"), stride=2, transpose=True)], has_alpha=False)
    np.testing.assert_array_equal(r.values[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))


def test_memory_estimate_grows_with_outputs():
    small = estimate_bytes((1, 3, 100, 100), [Step(load_filter("box:3"))])
    upsampled = estimate_bytes(
        (1, 3, 100, 100), [Step(load_filter("bilinear:4"), stride=4, transpose=True)]
    )
    assert upsampled > 10 * (small - (64 << 20))


@pytest.mark.parametrize(
    "shape, groups",
    [((3, 2, 3, 3), None), ((3, 4, 3, 3), None), ((3, 1, 4, 4), 3), ((3, 3, 3), None)],
)
def test_upsample_weights_use_the_transposed_layout(shape, groups):
    """4-D weights are (C, F/groups, Hf, Wf) as in ConvTranspose2d; 3-D (C, Hf, Wf) sums
    the channels into one. Against the library's conv_transpose2d on the edge-padded input."""
    from convcli import conv_transpose2d

    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 10, 12)).astype(np.float32)
    w = rng.random(shape)
    step = Step(Filter(w), stride=2, padding=1, output_padding=1, groups=groups, transpose=True)
    values = apply_steps(x, [step], has_alpha=False).values
    torch_layout = w if w.ndim == 4 else w[:, None]
    margin = 2  # ceil(kernel / stride) rows of edge on each side
    padded = np.pad(x, ((0, 0), (0, 0), (margin,) * 2, (margin,) * 2), mode="edge")
    full = conv_transpose2d(
        padded, torch_layout, stride=2, padding=1, output_padding=1, groups=groups or 1
    )
    crop = margin * 2
    expected = full[:, :, crop : crop + values.shape[2], crop : crop + values.shape[3]]
    out_channels = torch_layout.shape[1] * (groups or 1)
    assert values.shape == (
        1,
        out_channels,
        21 if shape[-1] == 4 else 20,
        25 if shape[-1] == 4 else 24,
    )
    np.testing.assert_allclose(values, expected, atol=1e-5)


def test_a_filter_files_bias_count_names_the_file(tmp_path):
    path = tmp_path / "two.json"
    path.write_text('{"weight": [[1, 2]], "bias": [1, 2]}')
    step = Step(load_filter(str(path)))
    with pytest.raises(KernelError, match=r"two.json: its bias has 2 values.*3 output channels"):
        apply_steps(np.zeros((1, 3, 4, 4), np.float32), [step], has_alpha=False)
    with pytest.raises(ParameterError, match=r"--bias takes 1 value or one per output channel"):
        apply_steps(
            np.zeros((1, 3, 4, 4), np.float32),
            [Step(load_filter(str(path)), bias=(1, 2))],
            has_alpha=False,
        )


def test_bias_and_normalized_weights_must_fit_float32():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ParameterError, match=r"--bias values must be finite.*1e\+300"):
        apply_steps(x, [Step(load_filter("box:3"), bias=(1e300,))], has_alpha=False)
    step = Step(load_filter("[[3e38, -3e38, 1e-6]]"), normalize=True)
    with pytest.raises(KernelError, match="after --normalize: weight value .* is too large"):
        apply_steps(x, [step], has_alpha=False)


def test_default_padding_mirrors_at_most_once():
    x = np.random.default_rng(0).random((1, 3, 64, 80), np.float32)
    # 129x129 needs 64 per side: one mirror of the 64 rows, with the edge repeated.
    result = apply_steps(x, [Step(load_filter("box:129"))], has_alpha=False)
    assert result.geometries[0].padding_mode == "symmetric"
    assert "padded 'symmetric' instead of 'reflect'" in result.warnings[0]
    for spec in ("box:130", "box:200"):
        with pytest.raises(ParameterError) as info:
            apply_steps(x, [Step(load_filter(spec))], has_alpha=False)
        message = str(info.value)
        assert "is too large for the 64x80 image" in message
        assert "padding 'same' needs (" in message and "dilation*(k-1)" in message
        assert "--padding valid" in message and "--pad-mode" in message
        assert "smaller kernel" in message
    # Another pad mode is a way out: zeros pads any amount.
    zeros = apply_steps(x, [Step(load_filter("box:200"), pad_mode="zeros")], has_alpha=False)
    assert zeros.values.shape == x.shape


def test_tiny_images_still_fall_back_to_symmetric():
    x = np.random.default_rng(0).random((1, 3, 1, 2), np.float32)
    result = apply_steps(x, [Step(load_filter("box:3"))], has_alpha=False)
    assert result.values.shape == x.shape
    assert result.geometries[0].padding_mode == "symmetric"
    assert "too small to mirror" in result.warnings[0]
    a, b = x[..., 0], x[..., 1]  # symmetric: columns a | a b | b, rows mirrored alike
    expected = np.stack([(2 * a + b) / 3, (a + 2 * b) / 3], axis=-1)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)


def test_output_padding_on_a_plain_convolution_is_a_usage_error():
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ParameterError, match="output_padding 1 applies to transposed steps"):
        apply_steps(x, [Step(load_filter("box:3"), output_padding=1)], has_alpha=False)


# Transposed steps: stride phases and padding modes -------------------------------------


def phase_notes(steps) -> list[str]:
    """The stride-phase warnings of ``steps``: given once for a batch, not per image."""
    from convcli.jobs.advice import step_warnings

    return [w for w in step_warnings(steps) if "stride phases" in w]


@pytest.mark.parametrize(
    ("spec", "factor"), [("bilinear:2", 2), ("bilinear:3", 3), ("nearest:4", 4)]
)
def test_kernels_made_for_the_factor_upsample_without_a_phase_warning(spec, factor):
    x = np.full((1, 1, 6, 6), 0.5, np.float32)
    steps = [Step(load_filter(spec), stride=factor, transpose=True)]
    r = apply_steps(x, steps, has_alpha=False)
    assert phase_notes(steps) == [] and r.warnings == []


@pytest.mark.parametrize(
    ("spec", "flat", "span"),
    [("gaussian:5", 0.25, "sum to 0.25, not 1"), ("bilinear:3", 2.25, "sum to 1.778 to 2.778")],
)
def test_phases_that_do_not_sum_to_one_change_brightness_with_a_warning(spec, flat, span):
    x = np.ones((1, 1, 16, 16), np.float32)
    steps = [Step(load_filter(spec), stride=2, transpose=True)]
    r = apply_steps(x, steps, has_alpha=False)
    centre = r.values[0, 0, 8:24, 8:24]
    assert centre.mean() == pytest.approx(flat, rel=1e-5)  # what the warning is about
    (note,) = phase_notes(steps)
    assert f"kernel {spec} at stride 2: its 4 stride phases {span}" in note
    assert "--normalize scales the kernel sum to 4 (stride_h*stride_w)" in note
    normalized = [Step(load_filter(spec), stride=2, transpose=True, normalize=True)]
    r = apply_steps(x, normalized, has_alpha=False)
    assert r.values[0, 0, 8:24, 8:24].mean() == pytest.approx(1.0, rel=1e-5)
    if spec == "gaussian:5":  # equal phases: --normalize makes each exactly 1
        assert phase_notes(normalized) == []
    else:  # unequal phases average 1 but still draw a grid
        assert "1 on average only" in phase_notes(normalized)[0]


def test_phase_sums_match_a_transposed_convolution_of_a_flat_image():
    from convcli import conv_transpose2d
    from convcli.jobs.step import phase_sums

    rng = np.random.default_rng(1)
    for shape, stride, dilation in [((5, 4), (2, 3), 1), ((3, 3), 2, 2), ((4, 6), (3, 2), (2, 1))]:
        w = rng.random(shape)
        out = conv_transpose2d(
            np.ones((1, 1, 12, 12)), w[None, None], stride=stride, dilation=dilation
        )
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        centre = out[0, 0, 6 * sh : 6 * sh + sh, 6 * sw : 6 * sw + sw]  # one of each phase
        sums = phase_sums(w, stride, dilation)
        np.testing.assert_allclose(np.sort(centre.ravel()), np.sort(sums.ravel()), rtol=1e-12)


def convtranspose_case(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((2, 3, 7, 9)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 4))  # ConvTranspose2d layout (C, F/groups, Hf, Wf)
    bias = rng.standard_normal(4)
    options = dict(stride=(2, 3), padding=1, output_padding=(1, 2), dilation=(1, 2))
    return x, w, bias, options


def test_zeros_pad_mode_is_exactly_the_librarys_conv_transpose2d():
    from convcli import conv_transpose2d

    x, w, bias, options = convtranspose_case()
    step = Step(Filter(w, bias), pad_mode="zeros", transpose=True, **options)
    values = apply_steps(x, [step], has_alpha=False).values
    expected = conv_transpose2d(x, w.astype(np.float32), bias.astype(np.float32), **options)
    np.testing.assert_array_equal(values, expected)
    # the default replicates the edges: borders differ, the interior is the same
    replicated = apply_steps(x, [replace_mode(step, None)], has_alpha=False).values
    assert replicated.shape == values.shape
    assert not np.allclose(replicated[..., 0, :], values[..., 0, :], atol=1e-3)
    np.testing.assert_allclose(replicated[..., 4:-4, 6:-6], values[..., 4:-4, 6:-6], atol=1e-5)
    same = apply_steps(x, [replace_mode(step, "replicate")], has_alpha=False).values
    np.testing.assert_array_equal(same, replicated)


def replace_mode(step, mode):
    from dataclasses import replace

    return replace(step, pad_mode=mode)


def test_zeros_pad_mode_matches_torch_conv_transpose2d_including_borders():
    torch = pytest.importorskip("torch")
    x, w, bias, options = convtranspose_case(2)
    step = Step(Filter(w, bias), pad_mode="zeros", transpose=True, **options)
    values = apply_steps(x, [step], has_alpha=False).values
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x),
        torch.from_numpy(w.astype(np.float32)),
        torch.from_numpy(bias.astype(np.float32)),
        options["stride"],
        options["padding"],
        options["output_padding"],
        1,
        options["dilation"],
    ).numpy()
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "circular", "symmetric", "replicate"])
def test_transposed_steps_pad_the_input_first_in_that_mode(mode):
    """Padded by the margin in ``mode`` (numpy.pad, via the reference), transposed, cropped."""
    from convcli import conv_transpose2d
    from tests.reference import ref_pad

    x = np.random.default_rng(5).random((1, 2, 6, 7)).astype(np.float32)
    step = Step(load_filter("bilinear:2"), stride=2, pad_mode=mode, transpose=True)
    values = apply_steps(x, [step], has_alpha=False).values
    w = np.repeat(load_filter("bilinear:2").weight[None, None], 2, 0).astype(np.float32)
    margin = 2  # ceil(4 / 2) rows and columns of padding before the transposed convolution
    full = conv_transpose2d(
        ref_pad(x, (margin,) * 4, mode).astype(np.float32), w, stride=2, padding="same", groups=2
    )
    crop = margin * 2
    np.testing.assert_allclose(values, full[:, :, crop : crop + 12, crop : crop + 14], atol=1e-6)


def test_unknown_pad_mode_on_a_transposed_step_names_the_modes():
    step = Step(load_filter("bilinear:2"), stride=2, pad_mode="edge", transpose=True)
    with pytest.raises(ParameterError, match="pad_mode must be one of zeros, reflect"):
        apply_steps(np.ones((1, 1, 4, 4), np.float32), [step], has_alpha=False)


# Filter banks and derivative steps ------------------------------------------------------


def _reference(x, weight, pad_mode="reflect"):
    """A per-channel 2-D kernel by the reference loops, padding "same" (odd kernels)."""
    k = weight.shape[0] // 2
    w = np.broadcast_to(weight, (x.shape[1], 1, *weight.shape))
    return ref_conv2d(x, w, pads=(k, k, k, k), groups=x.shape[1], mode=pad_mode)


@pytest.mark.parametrize("combine", ["magnitude", "abs-sum"])
def test_a_bank_combines_its_responses_then_adds_the_bias(rng, combine):
    kx, ky = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    bank = filter_bank([Filter(kx), Filter(ky)], "test", combine=combine, bias=np.array([0.5]))
    x = rng.random((2, 3, 9, 8)).astype(np.float32)
    result = apply_steps(x, [Step(bank, pad_mode="replicate")], has_alpha=False)
    rx, ry = _reference(x, kx, "replicate"), _reference(x, ky, "replicate")
    combined = np.hypot(rx, ry) if combine == "magnitude" else np.abs(rx) + np.abs(ry)
    np.testing.assert_allclose(result.values, combined + 0.5, rtol=1e-5, atol=1e-5)
    assert result.weight_shapes == [(2, 3, 1, 3, 3)]


def test_a_bank_at_a_stride_and_with_a_mixing_weight(rng):
    """Each response has the step's geometry (TensorFlow's "same": 1,1 rows and 0,1
    columns here); 3-D members make one channel each."""
    luma_x = rng.standard_normal((3, 3, 3))
    luma_y = rng.standard_normal((3, 3, 3))
    bank = filter_bank([Filter(luma_x), Filter(luma_y)], "test")
    x = rng.random((1, 3, 11, 10)).astype(np.float32)
    result = apply_steps(x, [Step(bank, stride=2, pad_mode="zeros")], has_alpha=False)
    expected = np.hypot(
        ref_conv2d(x, luma_x[None], stride=(2, 2), pads=(1, 1, 0, 1)),
        ref_conv2d(x, luma_y[None], stride=(2, 2), pads=(1, 1, 0, 1)),
    )
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-5)
    assert output_shape(x.shape, [Step(bank, stride=2)], has_alpha=False) == expected.shape


def test_a_magnitude_does_not_overflow_where_its_squares_would():
    x = np.full((1, 1, 3, 3), 3e19, np.float32)
    x[0, 0, :, 2] = 0
    result = apply_steps(x, [Step(load_filter("sobel"), pad_mode="replicate")], has_alpha=False)
    assert np.isfinite(result.values).all() and result.values.max() > 1e20


def test_derivative_steps_keep_alpha_and_see_premultiplied_colour():
    """On RGBA, -k sobel filters colour times alpha (a shape's outline is an edge) and
    leaves alpha as it was: not the gradient of alpha (zero where it is flat), which
    would make the whole image transparent."""
    rgba = np.zeros((1, 4, 6, 8), np.float32)
    rgba[0, :3] = np.linspace(0, 1, 8)  # a ramp: the same gradient everywhere
    rgba[0, 3, :, :5] = 1.0  # opaque on the left, transparent on the right
    for spec in ("sobel", "sobel-x", "laplacian"):
        step = Step(load_filter(spec), pad_mode="replicate")
        result = apply_steps(rgba.copy(), [step], has_alpha=True)
        np.testing.assert_array_equal(result.values[:, 3], rgba[:, 3])
        premultiplied = rgba[:, :3] * rgba[:, 3:]
        expected = apply_steps(premultiplied, [step], has_alpha=False).values
        np.testing.assert_allclose(result.values[:, :3], expected, atol=1e-6)
        assert result.has_alpha
    blurred = apply_steps(rgba.copy(), [Step(load_filter("box:3"))], has_alpha=True)
    assert blurred.values[0, 3, 0, 4] == pytest.approx(2 / 3)  # a blur still filters alpha


def test_alpha_follows_a_derivative_step_at_a_stride():
    rgba = np.random.default_rng(3).random((1, 4, 9, 7)).astype(np.float32)
    step = Step(load_filter("sobel"), stride=2, padding="same")
    result = apply_steps(rgba, [step], has_alpha=True)
    np.testing.assert_array_equal(result.values[0, 3], rgba[0, 3, ::2, ::2])


def test_a_transposed_bank_combines_each_transposed_response(rng):
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    x = rng.random((1, 2, 5, 6)).astype(np.float32)
    options = dict(stride=2, padding="same", pad_mode="zeros", transpose=True)
    bank = filter_bank([Filter(a), Filter(b)], "test")
    result = apply_steps(x, [Step(bank, **options)], has_alpha=False)
    one, other = (apply_steps(x, [Step(Filter(w), **options)], has_alpha=False) for w in (a, b))
    np.testing.assert_allclose(result.values, np.hypot(one.values, other.values), atol=1e-6)
    assert result.weight_shapes == [(2, 2, 1, 4, 4)]


STORED_CHAINS = {
    "sharpen": ["0 -1 0; -1 5 -1; 0 -1 0"],
    "gaussian": ["gaussian:9"],
    "large": ["gaussian:15,5"],  # fft
    "bank": ["sobel"],
    "chain": ["box:3", "laplacian"],
    "mixing": ["[[[0.3]], [[0.5]], [[0.2]]]"],  # takes the colour channels: alpha dropped
    "strided": [("gaussian:3", {"stride": 2})],
    "bias": [("1 1 1; 1 1 1; 1 1 1", {"bias": [0.2]})],
    "huge": ["3e38 -3e38 3e38"],  # Inf and NaN: counted, written as 0
    "upsample": [("bilinear:2", {"stride": 2, "transpose": True})],
    "upsample zeros": [("bicubic:3", {"stride": 3, "transpose": True, "pad_mode": "zeros"})],
}


@pytest.mark.parametrize("name", STORED_CHAINS)
@pytest.mark.parametrize("alpha", [False, True])
def test_stored_integers_in_and_out_are_the_float_pipelines_bit_for_bit(name, alpha, rng):
    """An image's stored integers, read a tile at a time, and the result quantized tile
    by tile: the very values, counts and bounds of the float pipeline and quantize."""
    from convcli.images.writing import quantize

    channels = 4 if alpha else 3
    stored = rng.integers(0, 256, (1, 45, 38, channels), np.uint8).transpose(0, 3, 1, 2)
    steps = []
    for spec in STORED_CHAINS[name]:
        spec, options = spec if isinstance(spec, tuple) else (spec, {})
        steps.append(Step(load_filter(spec), **options))
    floats = np.divide(stored, np.float32(255), dtype=np.float32)
    expected = apply_steps(floats, steps, has_alpha=alpha)
    integers = quantize(expected.values, 8)
    result = apply_steps(stored, steps, has_alpha=alpha, divisor=255, quantize=8)
    assert result.shape == expected.values.shape
    assert result.warnings == expected.warnings
    np.testing.assert_array_equal(result.minimum, expected.minimum)
    np.testing.assert_array_equal(result.maximum, expected.maximum)
    if result.integers is None:  # a bank, or alpha to divide by: the caller quantizes
        assert name == "bank" or (alpha and name != "mixing")
        np.testing.assert_array_equal(result.values, expected.values)
        return
    assert result.values is None
    for part in ("values", "below", "above", "nan"):
        np.testing.assert_array_equal(getattr(result.integers, part), getattr(integers, part))


INTEGER_KERNELS = {
    "sharpen": "0 -1 0; -1 5 -1; 0 -1 0",
    "laplacian": "laplacian",
    "emboss": "-2 -1 0; -1 1 1; 0 1 2",
    "box sum": "1 1 1; 1 1 1; 1 1 1",
    "wide": "1 0 0 0 -1",
    "int32": "0 -1 0; -1 200 -1; 0 -1 0",  # 204 * 255 overflows int16: summed in int32
}


def _exact(stored: np.ndarray, step: Step, top: int) -> np.ndarray:
    """The exact integer result (float64 sums of small integers are exact)."""
    from convcli.jobs.pipeline import prepare_on

    weight, groups, _, geo = prepare_on(step, stored.shape)
    return ref_conv2d(
        stored,
        weight,
        stride=geo.stride,
        pads=geo.padding,
        dilation=geo.dilation,
        groups=groups,
        mode=geo.padding_mode,
    )


@pytest.mark.parametrize(
    ("layout", "name"),
    # 16-bit: only kernels whose float32 sums provably round to the exact integers
    [(layout, name) for layout in ("interleaved", "planes", "gray") for name in INTEGER_KERNELS]
    + [("16-bit", "wide")],
)
@pytest.mark.parametrize(
    "options",
    [{}, {"pad_mode": "zeros"}, {"pad_mode": "circular", "stride": 2}, {"pad_mode": "replicate"}],
)
def test_integer_kernels_on_stored_integers_are_summed_exactly(
    name, options, layout, rng, monkeypatch
):
    """8-bit (or 16-bit) integers and integer weights: the sums are taken in integers,
    never floats, and give the float pipeline's integers bit for bit on every engine and
    across tile seams; the clipped counts and bounds are the exact ones."""
    from convcli.conv import engines
    from convcli.images.writing import quantize
    from convcli.jobs.quantized import Quantizing

    top = 65535 if layout == "16-bit" else 255
    channels = 1 if layout == "gray" else 3
    dtype = np.uint16 if top == 65535 else np.uint8
    stored = rng.integers(0, top + 1, (1, 37, 41, channels), dtype=dtype)
    stored[0, 5:20, 3:30] = top // 3  # flat: exact zeros, which floats may make -1e-9
    stored = stored.transpose(0, 3, 1, 2)
    if layout == "planes":
        stored = np.ascontiguousarray(stored)
    steps = [Step(load_filter(INTEGER_KERNELS[name]), **options)]
    exact = _exact(stored, steps[0], top)
    depth = 16 if top == 65535 else 8

    def no_floats(self, at, block):
        raise AssertionError("a float tile where the sums are integers")

    with monkeypatch.context() as patched:
        patched.setattr(Quantizing, "put", no_floats)
        with engines.tile_elements(300):  # many tiles: seams everywhere
            result = apply_steps(stored, steps, has_alpha=False, divisor=top, quantize=depth)
    expected_values = np.clip(exact, 0, top).astype(dtype).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(result.integers.values, expected_values)
    assert result.integers.below.tolist() == [int((exact < 0).sum())]
    assert result.integers.above.tolist() == [int((exact > top).sum())]
    assert result.minimum.tolist() == [float(np.float32(exact.min()) / np.float32(top))]
    assert result.maximum.tolist() == [float(np.float32(exact.max()) / np.float32(top))]
    floats = np.divide(stored, np.float32(top), dtype=np.float32)
    for path in engines.PATHS:
        with engines.force_path(path):
            float_result = apply_steps(floats, steps, has_alpha=False)
        integers = quantize(float_result.values, depth)
        np.testing.assert_array_equal(result.integers.values, integers.values, err_msg=path)


def test_integer_sums_into_a_16_bit_file_scale_each_8_bit_value_exactly(rng):
    from convcli.images.writing import quantize

    stored = rng.integers(0, 256, (1, 3, 20, 30), dtype=np.uint8)
    steps = [Step(load_filter("0 -1 0; -1 5 -1; 0 -1 0"))]
    result = apply_steps(stored, steps, has_alpha=False, divisor=255, quantize=16)
    floats = np.divide(stored, np.float32(255), dtype=np.float32)
    expected = quantize(apply_steps(floats, steps, has_alpha=False).values, 16)
    np.testing.assert_array_equal(result.integers.values, expected.values)
    exact = _exact(stored, steps[0], 255)
    assert result.integers.below.tolist() == [int((exact < 0).sum())]


@pytest.mark.parametrize(
    "spec, options",
    [
        ("0 -1 0; -1 5 -1; 0 -1 0", {"bias": [0.1]}),
        ("0 -0.5 0; -0.5 3 -0.5; 0 -0.5 0", {}),
        ("box:3", {}),  # normalized: ninths
    ],
)
def test_weights_or_a_bias_that_are_not_integers_stay_in_floats(spec, options, rng, monkeypatch):
    from convcli.jobs.quantized import Quantizing

    def no_integers(self, at, block, divisor):
        raise AssertionError("an integer tile for weights that are not integers")

    monkeypatch.setattr(Quantizing, "put_integers", no_integers)
    stored = rng.integers(0, 256, (1, 3, 20, 30), dtype=np.uint8)
    steps = [Step(load_filter(spec), **options)]
    result = apply_steps(stored, steps, has_alpha=False, divisor=255, quantize=8)
    assert result.integers is not None


@pytest.mark.parametrize(
    "specs, shape, alpha, top, depth, expected",
    [
        (["0 -1 0; -1 5 -1; 0 -1 0"], (1, 3, 20, 20), False, 255, 8, 255),
        (["1 0 0 0 -1"], (1, 3, 20, 20), False, 65535, 16, 65535),
        # 16-bit laplacian: float32's error bound passes half a level, so floats in memory
        # as in blocks (which compute floats) and as for decoders that give floats
        (["laplacian"], (1, 3, 20, 20), False, 65535, 16, None),
        (["laplacian"], (1, 3, 20, 20), False, 255, 16, 255),  # 8 bits into 16
        (["laplacian"], (1, 3, 20, 20), False, 65535, 8, None),  # 16 bits into 8: rounded
        (["laplacian"], (2, 3, 20, 20), False, 255, 8, None),  # frames: the caller quantizes
        (["laplacian"], (1, 4, 20, 20), True, 255, 8, None),  # premultiplied alpha
        (["gaussian:5"], (1, 3, 20, 20), False, 255, 8, None),
        (["sobel"], (1, 3, 20, 20), False, 255, 8, None),  # a bank
        (["laplacian", "laplacian"], (1, 3, 20, 20), False, 255, 8, None),
    ],
)
def test_exact_divisor_says_when_apply_steps_sums_in_integers(
    specs, shape, alpha, top, depth, expected, rng, monkeypatch
):
    from convcli.jobs.pipeline import exact_divisor
    from convcli.jobs.quantized import Quantizing

    steps = [Step(load_filter(spec)) for spec in specs]
    assert exact_divisor(steps, shape, has_alpha=alpha, top=top, depth=depth) == expected
    # ... and apply_steps agrees: integer tiles exactly when it says so.
    taken = []
    original = Quantizing.put_integers
    monkeypatch.setattr(
        Quantizing, "put_integers", lambda self, *a: taken.append(1) or original(self, *a)
    )
    stored = rng.integers(0, top + 1, shape, dtype=np.uint8 if top == 255 else np.uint16)
    quantize = depth if shape[0] == 1 else None
    apply_steps(stored, steps, has_alpha=alpha, divisor=top, quantize=quantize)
    assert bool(taken) == (expected is not None)
