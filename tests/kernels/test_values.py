"""Numbers as written and the weights and biases made of them: finite in float32, numbers
only, whatever the source (inline, JSON, TOML, text, .mat, NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels.loader import load_filter
from convcli.kernels.values import as_bias_array, as_number, plain_integer, plain_number
from tests.kernels import write


@pytest.mark.parametrize("text", ["1_0", "inf", "nan", " 3", "\u0663", "1e400", "0x10", ""])
def test_only_plain_ascii_decimals_are_numbers(text):
    assert plain_number(text) is None and plain_integer(text) is None


def test_plain_numbers_and_integers():
    assert (plain_number("-.5e1"), plain_number("+2."), plain_integer("-007")) == (-5.0, 2.0, -7)
    assert plain_integer("2.0") is None
    with pytest.raises(KernelError, match="'inf' is not a finite number"):
        as_number("inf", "kernel 'x'")
    with pytest.raises(KernelError, match=r"'aaaaaaaaaaaaaaaa'\.\.\. is not a number"):
        as_number("a" * 100, "kernel 'x'")  # a bad token is quoted short


def test_a_bias_is_a_number_or_a_flat_list():
    assert as_bias_array(0.5, "b").tolist() == [0.5]
    with pytest.raises(KernelError, match="flat, non-empty list"):
        as_bias_array([[1.0]], "b")
    with pytest.raises(KernelError, match="flat, non-empty list"):
        as_bias_array([], "b")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("1e308 1e308", r"kernel '1e308 1e308': weight value 1e\+308 is too large.*3\.40282e\+38"),
        ("unsharp:5,1,1e308", r"kernel 'unsharp:5,1,1e308': weight value .* is too large"),
        ("[[1e39]]", r"kernel '\[\[1e39\]\]': weight value 1e\+39 is too large"),
        ("[[" + "9" * 400 + "]]", r"a weight value is too large"),
        ("3x3: 1,2,1 2,1e300,2 1,2,1", "too large"),
        ("[[true,false]]", r"kernel '\[\[true,false\]\]': the weight holds true \(bool\)"),
        ('[["1", true]]', r"the weight holds '1' \(str\)"),
        ("[[1, null]]", r"the weight holds None"),
    ],
)
def test_weights_must_be_numbers_finite_in_float32(spec, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(spec)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("w.json", '{"weight": [[1, 2]], "bias": [true]}', r"w.json: bias: the bias holds true"),
        ("w.json", '{"weight": [[1, 2]], "bias": "1"}', r"w.json: bias: the bias holds '1'"),
        ("w.json", '{"weight": [[1, 2]], "bias": 1e300}', r"w.json: bias: bias value 1e\+300"),
        ("w.json", '{"weight": [[true, 2]]}', r"w.json: weight: the weight holds true"),
        ("w.toml", 'weight = [[1, "2"]]\n', r"w.toml: weight: the weight holds '2'"),
        ("w.toml", "weight = [[1, 2]]\nbias = 1e300\n", r"w.toml: bias: bias value 1e\+300"),
        ("w.txt", "1 2\n3 1e300\n", r"w.txt: weight value 1e\+300 is too large"),
        ("w.mat", "2 1 1e-300\n1 1\n", r"w.mat: weight value 1e\+300 is too large"),
        ("w.mat", "2 1 1 1e300\n1 1\n", r"w.mat: offset: bias value .* is too large"),
    ],
)
def test_filter_files_refuse_values_float32_cannot_hold(tmp_path, name, content, needle):
    with pytest.raises(KernelError, match=needle):
        load_filter(write(tmp_path, name, content))


def test_numpy_files_refuse_values_float32_cannot_hold(tmp_path):
    np.save(tmp_path / "w.npy", np.array([[1.0, 1e300]]))
    with pytest.raises(KernelError, match=r"w.npy: weight value 1e\+300 is too large"):
        load_filter(str(tmp_path / "w.npy"))
    np.savez(tmp_path / "w.npz", weight=np.ones((2, 2)), bias=np.array([1e39]))
    with pytest.raises(KernelError, match=r"w.npz: bias value 1e\+39 is too large"):
        load_filter(str(tmp_path / "w.npz"))
    np.save(tmp_path / "b.npy", np.array([[True, False]]))
    with pytest.raises(KernelError, match="real numbers"):
        load_filter(str(tmp_path / "b.npy"))


def test_float32_limits_are_accepted():
    top = float(np.finfo(np.float32).max)
    assert load_filter(f"{top!r} {-top!r}").weight.max() == top
