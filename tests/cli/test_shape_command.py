"""``convcli shape`` and ``convcli kernels`` through click's CliRunner: usage errors and
what the commands print (the library behind them is tested in test_shapecalc.py and
test_kernels.py)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from convcli.cli.app import cli


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["1,3,224,224", "-k", "3x3", "--output-padding", "1"], "--output-padding 1 applies to "),
        (["1,3,224,224", "-k", "3x3", "--output-padding", "1,0"], "add --transpose"),
        (["--input", "1,3,224,224", "--layer", "k=3,op=1"], "op=1 (output_padding) applies to"),
    ],
)
def test_output_padding_without_transpose_is_a_usage_error(args, needle):
    result = run("shape", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and result.output.count("\n") == 1


def test_output_padding_with_transpose_still_works():
    result = run(
        "shape", "4x4", "-k", "3x3", "--stride", "2", "--transpose", "--output-padding", "1"
    )
    assert result.exit_code == 0 and "output: (1, 1, 10, 10)" in result.output
    result = run("shape", "--input", "1,1,4,4", "--layer", "k=3,s=2,t=1,op=1")
    assert result.exit_code == 0 and "(1, 1, 10, 10)" in result.output


def test_kernels_summarizes_a_large_kernel():
    result = run("kernels", "gaussian:1001")
    assert result.exit_code == 0
    assert len(result.output) < 2000 and "shape: 1001x1001   sum: 1" in result.output


def test_kernels_shows_a_filter_files_options(tmp_path):
    path = tmp_path / "norm.json"
    path.write_text('{"weight": "box:3", "stride": 2, "normalize": true}')
    result = run("kernels", str(path))
    assert result.exit_code == 0
    assert "options: stride 2, normalize true" in result.output
    assert "normalized sum: 1" in result.output


def test_a_bare_number_is_a_size_nowhere(tmp_path):
    """``-k 3`` is the 1x1 kernel [3] in apply; shape refuses it and names both meanings,
    and takes the size as 3x3 (its 1x1 shape as 1x1)."""
    refused = run("shape", "8x8", "-k", "3")
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert "-k 3x3" in refused.output and "1x1 kernel of value 3" in refused.output
    assert "output: (1, 1, 6, 6)" in run("shape", "8x8", "-k", "3x3").output
    assert "output: (1, 1, 8, 8)" in run("shape", "8x8", "-k", "1x1").output
    image = tmp_path / "in.npy"
    np.save(image, np.full((1, 4, 4), 0.25, np.float32))
    applied = run("apply", str(image), "-k", "3", "-o", str(tmp_path / "out.npy"), "-q")
    assert applied.exit_code == 0, applied.output
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.full((1, 4, 4), 0.75))
