"""Spec precedence and loading.

The named kernels themselves are tested in test_named_kernels.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_names_win_over_files_and_dot_slash_reaches_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sharpen").write_text("1 1\n1 1\n")
    assert load_filter("sharpen").weight.shape == (3, 3)
    assert load_filter("./sharpen").weight.shape == (2, 2)


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
