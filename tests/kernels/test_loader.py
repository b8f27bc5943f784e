"""Spec precedence and loading.

The named kernels themselves are tested in test_named_kernels.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli import KernelError
from convcli.kernels.loader import NAMED, list_kernels, load_filter
from tests.paths import FILTERS


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("gausian:5", "gaussian"),
        ("", "empty"),
        ("missing.txt", "does not exist"),
        ("./sobel-x", "does not exist"),
    ],
)
def test_spec_errors(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


@pytest.mark.parametrize("spec", ["{tmp}", "{tmp}/", "filters", "./filters"])
def test_a_directory_is_named_as_a_directory(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "filters").mkdir()
    spec = spec.format(tmp=tmp_path)
    with pytest.raises(KernelError, match=r"is a directory, not a kernel file; name a file in it"):
        load_filter(spec)


def test_an_inline_matrix_longer_than_a_file_name_still_parses():
    row = " ".join(["1"] * 300)  # 600 characters: too long a name for the file system
    assert load_filter(f"{row}; {row}").weight.shape == (2, 300)


def test_config_files_whose_weight_leads_back_are_refused(tmp_path):
    (tmp_path / "self.json").write_text('{"weight": "self.json"}')
    with pytest.raises(KernelError, match=r"self.json: its 'weight' leads back to this file"):
        load_filter(str(tmp_path / "self.json"))
    (tmp_path / "a.toml").write_text('weight = "b.json"\n')
    (tmp_path / "b.json").write_text('{"weight": "a.toml"}')
    with pytest.raises(KernelError, match=r"a.toml -> b.json -> a.toml"):
        load_filter(str(tmp_path / "a.toml"))
    (tmp_path / "c.json").write_text('{"weight": "d.json", "bias": 0.5}')
    (tmp_path / "d.json").write_text('{"weight": "sobel-x"}')
    assert load_filter(str(tmp_path / "c.json")).weight.shape == (3, 3)


def test_deeply_nested_json_is_a_kernel_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(KernelError, match="nested too deeply"):
        load_filter(deep)
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(KernelError, match="deep.json: nested too deeply"):
        load_filter(str(tmp_path / "deep.json"))


@pytest.mark.parametrize("depth", [5, 70, 500, 100_000])
@pytest.mark.parametrize("suffix", [".json", ".toml", "inline"])
def test_kernels_nested_deeper_than_4_levels_are_too_deep_in_every_form(tmp_path, depth, suffix):
    nested = "[" * depth + "1" + "]" * depth
    if suffix == "inline":
        spec = nested
    else:
        spec = str(tmp_path / f"deep{suffix}")
        Path(spec).write_text(f"weight = {nested}" if suffix == ".toml" else nested)
    with pytest.raises(KernelError, match="nested too deeply"):
        load_filter(spec)


@pytest.mark.parametrize("make", ["fifo", "device"])
def test_a_kernel_path_that_is_not_a_regular_file_is_never_opened(tmp_path, make):
    if make == "fifo":
        path = tmp_path / "k.txt"
        os.mkfifo(path)  # opening it would wait for a writer forever
    else:
        path = Path("/dev/zero")  # reading it would never end
    with pytest.raises(KernelError, match="is not a regular file"):
        load_filter(str(path))


def test_names_win_over_files_and_dot_slash_reaches_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sharpen").write_text("1 1\n1 1\n")
    named = load_filter("sharpen")
    assert named.weight.shape == (3, 3)
    assert any("'./sharpen'" in w for w in named.warnings), named.warnings
    assert load_filter("./sharpen").weight.shape == (2, 2)
    assert load_filter("./sharpen").warnings == ()


@pytest.mark.parametrize(
    ("spec", "weight"),
    [("3", [[3.0]]), ("1 2 1", [[1.0, 2.0, 1.0]]), ("[[0.5]]", [[0.5]]), ("1x1: 2", [[2.0]])],
)
def test_a_spec_that_parses_is_a_spec_though_a_file_has_its_name(
    tmp_path, monkeypatch, spec, weight
):
    # -k 3 read a file named 3 in the working directory instead of the 1x1 kernel [3],
    # while -k box:3 ignored a file named box:3: one rule now, and a warning either way.
    monkeypatch.chdir(tmp_path)
    Path(spec).write_text("1 1\n1 1\n")
    f = load_filter(spec)
    np.testing.assert_array_equal(f.weight, weight)
    (warning,) = f.warnings
    assert f"a file named {spec!r} exists" in warning and f"'./{spec}'" in warning
    assert load_filter(f"./{spec}").weight.shape == (2, 2)


def test_a_spec_that_does_not_parse_falls_back_to_the_file_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("1 2 x").write_text("1 1\n1 1\n")
    assert load_filter("1 2 x").weight.shape == (2, 2)


def test_inline_forms():
    assert load_filter("1 2 1; 2 4 2; 1 2 1").weight.sum() == 16
    assert load_filter("[[1,2,1],[2,4,2],[1,2,1]]").weight.shape == (3, 3)
    assert load_filter("3x3: 1,2,1 2,4,2 1,2,1").weight.sum() == 16
    assert load_filter("1 2 1").weight.shape == (1, 3)
    assert load_filter("[[[1]],[[2]],[[3]]]").weight.shape == (3, 1, 1)


def test_catalogue_names_stay_importable_from_kernels():
    from convcli.kernels import named

    assert list_kernels is named.list_kernels
    assert NAMED is named.NAMED


@pytest.mark.parametrize("path", sorted(p for p in FILTERS.iterdir() if p.suffix != ".md"))
def test_shipped_example_filters_load(path):
    f = load_filter(str(path))
    assert f.weight.ndim in (2, 3, 4) and np.isfinite(f.weight).all()


# Filter banks ---------------------------------------------------------------------------


def test_named_gradient_magnitudes_are_banks_of_their_x_and_y_kernels():
    for name in ("sobel", "scharr", "prewitt"):
        f = load_filter(name)
        x, y = load_filter(f"{name}-x").weight, load_filter(f"{name}-y").weight
        assert len(f.bank) == 2 and f.combine == "magnitude"
        np.testing.assert_array_equal(f.bank[0], x)
        np.testing.assert_array_equal(f.bank[1], y)
        assert f.weight is f.bank[0] and f.weights == f.bank
    plain = load_filter("sobel-x")
    assert plain.bank == () and plain.weights == (plain.weight,)


def test_a_bank_file_takes_matrices_names_and_files(tmp_path):
    (tmp_path / "ky.txt").write_text("1 2 1\n0 0 0\n-1 -2 -1\n")
    config = tmp_path / "edges.json"
    config.write_text(
        '{"bank": ["sobel-x", "ky.txt", [[0, 1, 0], [0, 0, 0], [0, -1, 0]]], '
        '"combine": "abs-sum", "bias": 0.1, "pad_mode": "replicate", "description": "three"}'
    )
    f = load_filter(str(config))
    assert [w.tolist() for w in f.bank] == [
        load_filter("sobel-x").weight.tolist(),
        [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
        [[0, 1, 0], [0, 0, 0], [0, -1, 0]],
    ]
    assert f.combine == "abs-sum" and f.bias.tolist() == [0.1] and f.description == "three"
    assert dict(f.options) == {"pad_mode": "replicate"}
    assert f.files == (str(config), str(tmp_path / "ky.txt"))
    toml = tmp_path / "edges.toml"
    toml.write_text('bank = ["sobel", "scharr"]\n')  # banks in a bank: one magnitude
    assert len(load_filter(str(toml)).bank) == 4
    weight = tmp_path / "named.json"
    weight.write_text('{"weight": "sobel", "stride": 2}')
    assert len(load_filter(str(weight)).bank) == 2  # a weight naming a bank stays one


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"bank": ["sobel-x", "box:5"]}', r"different shapes \(3x3, 5x5\)"),
        ('{"bank": []}', "the bank is empty"),
        ('{"bank": "sobel-x"}', "'bank' must be a list"),
        ('{"bank": ["sobel-x"], "weight": [[1]]}', "not both"),
        ('{"bank": ["sobel-x"], "combine": "max"}', "'combine' must be 'magnitude' or 'abs-sum'"),
        ('{"weight": [[1]], "combine": "magnitude"}', "with a 'bank'; got 'magnitude' without"),
        ('{"bank": ["b.json"]}', r"bank member .*b.json sets bias"),
        ('{"bank": ["sobel", "sobel-x"], "combine": "abs-sum"}', "combines its responses by"),
        ('{"bank": [[[1, 2]], "nope"]}', "unknown kernel 'nope'"),
        ('{"bank": ["sobel-x", "sobel-y"], "normalize": true}', "sums to zero"),
    ],
)
def test_bank_file_errors(tmp_path, content, needle):
    (tmp_path / "b.json").write_text('{"weight": [[1, 0, -1]], "bias": 1}')
    (tmp_path / "f.json").write_text(content)
    with pytest.raises(KernelError, match=needle):
        load_filter(str(tmp_path / "f.json"))


# A one-row inline matrix that looks meant as a square -----------------------------------


@pytest.mark.parametrize(
    ("spec", "written"),
    [
        ("0 -1 0, -1 5 -1, 0 -1 0", "'0 -1 0; -1 5 -1; 0 -1 0'"),
        ("1,1,1,1,0.5,1,1,1,1,1,1,1,1,1,1,1", "'1 1 1 1; 0.5 1 1 1; 1 1 1 1; 1 1 1 1'"),
        ("[0, -1, 0, -1, 5, -1, 0, -1, 0]", "'[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]'"),
    ],
)
def test_a_one_row_square_count_warns_with_the_rows_written_out(spec, written):
    f = load_filter(spec)
    assert f.weight.shape[0] == 1  # still read as written: one row
    (warning,) = f.warnings
    assert f"is one row of {f.weight.size} values" in warning and written in warning
    assert load_filter(written.strip("'")).weight.shape[0] > 1  # the advice is right


@pytest.mark.parametrize(
    "spec", ["1 2 1", "1 2 3 4 5 6 7 8", "[[0, -1, 0, -1, 5, -1, 0, -1, 0]]", "1 0 -1; 2 0 -2"]
)
def test_other_inline_matrices_do_not_warn(spec):
    assert load_filter(spec).warnings == ()


# Every numeric argument of every kernel spec: finite and in range, or one KernelError --------

_NUMBER_TEXT = st.one_of(
    st.integers(-2000, 2000).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.builds("{}e{}".format, st.integers(-9, 9), st.integers(-400, 400)),
    st.sampled_from(["1e400", "-1e400", "1e309", "+1e400", "1e-400", "inf", "-inf", "nan"]),
    st.sampled_from(["3_0", "", "0x10", "1e", ".", "+", "\u0663", " 2", "1..2", "--1"]),
)
_IM_SEPARATORS = st.sampled_from(["x", "X", ",", "+", "-", "/", "x+", "x-"])


@st.composite
def _kernel_specs(draw) -> str:
    numbers = draw(st.lists(_NUMBER_TEXT, min_size=0, max_size=4))
    if draw(st.booleans()):
        from convcli.kernels.imagemagick import NAMES

        text = numbers[0] if numbers else ""
        for number in numbers[1:]:
            text += draw(_IM_SEPARATORS) + number
        return f"im:{draw(st.sampled_from(NAMES))}" + (f":{text}" if numbers else "")
    name = draw(st.sampled_from(sorted(NAMED)))
    return name + (":" + ",".join(numbers) if numbers else "")


@given(_kernel_specs())
def test_kernel_arguments_are_finite_and_in_range_or_one_kernel_error(spec):
    # im:Sobel:1e400 was a traceback (math.fmod of infinity), im:Gaussian:1e400 another.
    try:
        found = load_filter(spec)
    except KernelError:
        return
    for weight in found.weights:
        assert np.isfinite(weight).all() and np.abs(weight).max() <= np.finfo(np.float32).max
        assert max(weight.shape) <= 1001
