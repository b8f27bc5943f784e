"""Filter file formats and their error messages; fuzzing every parser."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcli import KernelError
from convcli.kernels.filters import Filter
from convcli.kernels.loader import load_filter
from convcli.kernels.parsers import parse_imagemagick, parse_inline, parse_text, parse_vips_mat
from tests.kernels import write


def test_excel_csv_with_bom_crlf_and_trailing_commas(tmp_path):
    path = write(tmp_path, "k.csv", b"\xef\xbb\xbf1,2,1,\r\n2,4,2,\r\n1,2,1,\r\n")
    np.testing.assert_array_equal(load_filter(path).weight, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_text_comments_tabs_and_stacked_blocks(tmp_path):
    path = write(tmp_path, "k.tsv", "# two filters\n1\t0\n0\t1  # diag\n\n\n0\t1\n1\t0\n")
    assert load_filter(path).weight.shape == (2, 2, 2)


def test_ragged_rows_name_the_file_and_line(tmp_path):
    path = write(tmp_path, "ragged.txt", "1 2 1\n2 4\n1 2 1\n")
    with pytest.raises(KernelError, match=r"ragged.txt, line 2: 2 values, but the first row has 3"):
        load_filter(path)


def test_non_numeric_token_is_named(tmp_path):
    path = write(tmp_path, "bad.txt", "1 2 1\n2 four 2\n")
    with pytest.raises(KernelError, match=r"bad.txt, line 2: 'four' is not a number"):
        load_filter(path)


@pytest.mark.parametrize("content", ["", "# only a comment\n\n", "\ufeff\r\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(KernelError, match="no numbers"):
        load_filter(write(tmp_path, "empty.txt", content))


@pytest.mark.parametrize("token", ["nan", "inf", "-inf"])
def test_nan_and_inf_are_refused(tmp_path, token):
    with pytest.raises(KernelError, match="finite"):
        load_filter(write(tmp_path, "k.txt", f"1 {token} 1\n"))


def test_blocks_of_different_shapes(tmp_path):
    with pytest.raises(KernelError, match="line 4: block of 1x2"):
        load_filter(write(tmp_path, "k.txt", "1 2\n3 4\n\n5 6\n"))


def test_vips_mat(tmp_path):
    f = load_filter(write(tmp_path, "k.mat", "3 3 16 128\n1 2 1\n2 4 2\n1 2 1\n"))
    assert f.weight.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(f.bias, [128 / 255])
    with pytest.raises(KernelError, match="header says 3 rows"):
        load_filter(write(tmp_path, "short.mat", "3 3\n1 2 1\n"))
    with pytest.raises(KernelError, match="header must be"):
        load_filter(write(tmp_path, "bad.mat", "3.5 3\n1 2 1\n"))


def test_imagemagick_strings():
    assert parse_imagemagick("3: 0,1,0 1,1,1 0,1,0").sum() == 5
    assert parse_imagemagick("3x1: 1 nan 1").tolist() == [[1, 0, 1]]
    with pytest.raises(KernelError, match="needs 9 values"):
        parse_imagemagick("3x3: 1,2,3")


# ImageMagick's AcquireKernelInfo: "nan" and "-" are positions outside the neighbourhood,
# which its convolution skips (the same as weight 0); the default origin is
# ((W-1)/2, (H-1)/2) in integer division, "+0+0" being the top left.
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("3x3: -,1,- 1,1,1 -,1,-", [[0, 1, 0], [1, 1, 1], [0, 1, 0]]),
        ("3x3: NaN,1,nan 1,1,1 -,1,-", [[0, 1, 0], [1, 1, 1], [0, 1, 0]]),
        ("3x3+1+1: -,1,- 1,-4,1 -,1,-", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ("4x2+1+0: 1,2,-,4 -,-,-,8", [[1, 2, 0, 4], [0, 0, 0, 8]]),
        ("2X2: 1 - - 1", [[1, 0], [0, 1]]),
    ],
)
def test_imagemagick_missing_values_are_zero(spec, expected):
    np.testing.assert_array_equal(load_filter(spec).weight, expected)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (
            "3x3+0+0: 1,1,1 1,1,1 1,1,1",
            r"origin \+0\+0 is off-centre; convcli centres kernels \(\+1\+1",
        ),
        ("3x3+3+1: 1,1,1 1,1,1 1,1,1", r"origin \+3\+1 is outside the 3x3 kernel"),
        ("3x3-1-1: 1,1,1 1,1,1 1,1,1", r"origin -1-1 is outside"),
        ("3x3>: 0,1,0 0,1,0 0,1,0", r"rotation flag '>'"),
        ("3x3@: 0,1,0 0,1,0 0,1,0", r"rotation flag '@'"),
        ("3x1: 1,2,1; 1x3: 1,2,1", r"list of kernels is not supported"),
        ("3x1: - nan -", r"every value is 'nan' or '-'"),
        ("0x3: ", r"width and height must be >= 1"),
        ("3x1: 1 -- 1", r"'--' is not a number"),
    ],
)
def test_imagemagick_errors(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


@pytest.mark.parametrize("spec", ["1 - 1", "1 nan 1", "[[1, NaN, 1]]"])
def test_missing_value_markers_only_mean_zero_in_imagemagick_strings(spec):
    with pytest.raises(KernelError):
        load_filter(spec)


def test_config_files(tmp_path):
    path = write(
        tmp_path,
        "f.json",
        '{"weight": [[1, 2, 1]], "stride": [1, 2], "padding": "valid",'
        ' "pad_mode": "zeros", "flip": true, "description": "x"}',
    )
    f = load_filter(path)
    assert dict(f.options) == {
        "stride": (1, 2),
        "padding": "valid",
        "pad_mode": "zeros",
        "flip": True,
    }
    write(tmp_path, "k.txt", "1 1\n1 1\n")
    toml = write(tmp_path, "f.toml", 'weight = "k.txt"\nbias = 0.25\nnormalize = true\n')
    f = load_filter(toml)
    assert f.weight.shape == (2, 2) and f.bias.tolist() == [0.25] and f.options["normalize"]


def test_config_one_element_lists_are_the_value_as_in_pytorch(tmp_path):
    path = write(
        tmp_path, "f.json", '{"weight": [[1]], "stride": [2], "padding": [1], "dilation": [3]}'
    )
    assert dict(load_filter(path).options) == {"stride": 2, "padding": 1, "dilation": 3}


def test_json_file_with_a_bare_array_is_the_weight(tmp_path):
    f = load_filter(write(tmp_path, "k.json", "[[1, 2, 1], [2, 4, 2], [1, 2, 1]]\n"))
    np.testing.assert_array_equal(f.weight, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert f.bias is None and not f.options
    assert load_filter(write(tmp_path, "s.json", "[[[1]], [[2]], [[3]]]")).weight.shape == (3, 1, 1)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"weight": [[1]], "strides": 2}', "unknown key 'strides'"),
        ('{"weight": [[1]], "stride": 0}', "'stride' must be a positive integer"),
        ('{"weight": [[1]], "stride": "2"}', "'stride'"),
        ('{"weight": [[1]], "padding": "full"}', "'padding'"),
        ('{"weight": [[1]], "pad_mode": "mirror"}', "'pad_mode' must be one of"),
        ('{"weight": [[1]], "flip": "yes"}', "'flip' must be true or false"),
        ('{"weight": [[1]], "groups": 1.5}', "'groups'"),
        ('{"weight": [[1, 2], [3]]}', "rectangular"),
        ('{"weight": [[-1, 0, 1]], "normalize": true}', "sums to zero"),
        ('{"bias": 1}', "no 'weight'"),
        (
            '{"weight": [[1]], "bias": []}',
            r"f.json: bias: bias must be a number or a flat, non-empty",
        ),
        ('{"weight": [[1]], "bias": [[1]]}', "flat, non-empty list"),
        ("12", r"f.json: holds a single JSON number; a filter file holds an array of numbers"),
        ('"gaussian:5"', r"f.json: holds a single JSON string"),
        ("null", r"f.json: holds a single JSON null"),
        ('[[1, 2], "x"]', r"f.json: weight: the weight holds 'x' \(str\)"),
        ("[]", "2 to 4 dimensions"),
        ('{"weight": [[1]],}', "not valid JSON"),
    ],
)
def test_config_errors_name_the_key(tmp_path, content, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(write(tmp_path, "f.json", content))


# Values: numbers only, finite in float32, wherever they come from. ----------------------------


# Fuzzing: any text into any parser gives a result or KernelError, nothing else. -------------

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
numberish = st.text(alphabet="0123456789 .,;-+eE\n\t#xnaif[]", max_size=60)


@given(st.one_of(text, numberish))
def test_fuzz_inline_and_spec(spec):
    try:
        f = load_filter(spec)
    except KernelError:
        return
    assert isinstance(f, Filter) and np.isfinite(f.weight).all()


@given(st.one_of(text, numberish))
def test_fuzz_text_and_mat_parsers(content):
    for parser in (parse_text, parse_vips_mat):
        with contextlib.suppress(KernelError):
            parser(content, "fuzz")
    with contextlib.suppress(KernelError):
        parse_imagemagick("3x3:" + content)
    with contextlib.suppress(KernelError):
        parse_inline(content)


@given(st.binary(max_size=200), st.sampled_from([".json", ".toml", ".npy", ".npz", ".txt", ".mat"]))
def test_fuzz_files(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"k{suffix}"
    path.write_bytes(data)
    with contextlib.suppress(KernelError):
        load_filter(str(path))


def test_semicolons_end_rows_in_text_files_as_they_do_inline(tmp_path):
    inline = load_filter("1 2 1; 2 4 2; 1 2 1").weight
    for name in ("k.txt", "k.csv"):
        path = write(tmp_path, name, "1 2 1; 2 4 2; 1 2 1\n")
        np.testing.assert_array_equal(load_filter(path).weight, inline)
    # a ';' closing each line (MATLAB style) changes nothing; ';;' separates blocks as inline
    path = write(tmp_path, "m.txt", "1 2;\n3 4;\n")
    assert load_filter(path).weight.shape == (2, 2)
    assert parse_text("1 2; 3 4;; 5 6; 7 8", "k.txt").shape == (2, 2, 2)
    assert parse_inline("1 2; 3 4;; 5 6; 7 8").shape == (2, 2, 2)


def test_ragged_semicolon_rows_name_the_file_line_and_row(tmp_path):
    path = write(tmp_path, "ragged.txt", "1 2 1; 2 4; 1 2 1\n")
    with pytest.raises(
        KernelError, match=r"ragged.txt, line 1, row 2 \(rows end at ';'\): 2 values, but the "
    ):
        load_filter(path)


@pytest.mark.parametrize(
    "content",
    ["0,25;0,5;0,25\n0,5;1;0,5\n0,25;0,5;0,25\n", "0,5;0,5\n0,5;0,5\n", "0,5;1;0,5\n"],
)
def test_decimal_comma_spreadsheets_are_refused_not_misread(tmp_path, content):
    path = write(tmp_path, "euro.csv", content)
    with pytest.raises(KernelError, match=r"euro.csv, line 1: .*decimal commas \('0,"):
        load_filter(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # Read as 3x6 ([0, 25, 0, 5, 0, 25], ...): tabs between values, commas inside them.
        ("euro.tsv", "0,25\t0,5\t0,25\n0,5\t1\t0,5\n0,25\t0,5\t0,25\n"),
        ("euro.txt", "0,5 1,5\n1,5 0,5\n"),
        ("euro.csv", "1\t0,5\n"),
    ],
)
def test_decimal_commas_between_tabs_or_spaces_are_refused_not_misread(tmp_path, name, content):
    path = write(tmp_path, name, content)
    with pytest.raises(KernelError, match=rf"{name}, line 1: .*decimal commas \('0,") as e:
        load_filter(path)
    assert "tabs or spaces between values" in str(e.value) and "points (0." in str(e.value)


@pytest.mark.parametrize("content", ["1,2,1\n2,4,2\n", "1, 2, 1\n2, 4,2\n", "1 2\t1\n2,4 , 2\n"])
def test_commas_between_values_stay_separators(tmp_path, content):
    np.testing.assert_array_equal(
        load_filter(write(tmp_path, "k.csv", content)).weight, [[1, 2, 1], [2, 4, 2]]
    )


def test_one_line_of_comma_pairs_is_a_matlab_style_matrix(tmp_path):
    path = write(tmp_path, "k.txt", "1,2;3,4\n")
    np.testing.assert_array_equal(load_filter(path).weight, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ('{"weight": [[1]], "weight": [[2]]}', "weight"),
        ('{"weight": [[1]], "pad_mode": "zeros", "pad_mode": "reflect"}', "pad_mode"),
        ('{"weight": [[1]], "description": "a", "description": "b"}', "description"),
    ],
)
def test_json_filter_files_refuse_a_key_given_twice(tmp_path, content, key):
    with pytest.raises(KernelError, match=f"the key '{key}' is given twice"):
        load_filter(write(tmp_path, "k.json", content))
