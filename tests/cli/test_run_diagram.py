"""``convcli shape --diagram``: the picture holds the cells ``shape --json`` counts, the
numbers ``apply`` computes, and is refused (one line, exit 2, nothing written) when it
cannot be drawn or would overwrite an input."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from convcli.cli.app import cli
from convcli.cli.shape_command import PAD_MODES
from convcli.conv import padding
from convcli.shapes import raster
from tests.paths import ROOT
from tests.reference import ref_conv2d

SVG = "{http://www.w3.org/2000/svg}"


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def classes(path) -> list[list[str]]:
    root = ET.parse(path).getroot()
    return [e.get("class", "").split() for e in root.iter(f"{SVG}rect")]


def count(found: list[list[str]], cls: str) -> int:
    return sum(cls in c for c in found)


GRID = [
    ["5x5", "-k", "3x3"],
    ["5x5", "-k", "3x3", "--stride", "2", "--padding", "1"],
    ["6x7", "-k", "4x2", "--padding", "same"],
    ["7x7", "-k", "3x3", "--dilation", "2", "--padding", "1,0,2,1", "--pad-mode", "reflect"],
    ["8x5", "-k", "3x3", "--stride", "3,2", "--padding", "1,2", "--pad-mode", "circular"],
    ["2x2", "-k", "3x3", "--stride", "2", "--padding", "1", "--transpose"],
    ["3x2", "-k", "3x3", "--stride", "2", "--transpose", "--output-padding", "1"],
    ["3x3", "-k", "4x4", "--stride", "2", "--padding", "same", "--transpose"],
    ["3x3", "-k", "1x1", "--stride", "2", "--padding", "same", "--transpose"],
    ["2x3", "-k", "2x3", "--stride", "3", "--dilation", "2", "--transpose"],
]


def _transposed_grid(size, k, s, d, before, after, op) -> tuple[int, int]:
    """(grid cells, stretched cells) of one axis of Dumoulin & Visin's picture."""
    stretched = (size - 1) * s + 1
    lead, trail = d * (k - 1) - before, d * (k - 1) - after + op
    return max(lead, 0) + stretched + max(trail, 0), stretched


@pytest.mark.parametrize("args", GRID, ids=" ".join)
def test_the_cells_are_the_ones_shape_json_counts(tmp_path, args):
    data = json.loads(run("shape", *args, "--json").output)
    picture = tmp_path / "conv.svg"
    result = run("shape", *args, "--diagram", str(picture))
    assert result.exit_code == 0, result.output
    found = classes(picture)
    _, _, h, w = data["input_shape"]
    _, _, kh, kw = data["weight_shape"]
    t, b, left, right = data["padding"]
    assert count(found, "input") == h * w
    assert count(found, "output") == data["output_shape"][2] * data["output_shape"][3]
    assert count(found, "current") == 1 and count(found, "window") == kh * kw
    if data["transpose"]:
        (sh, sw), (dh, dw), (oph, opw) = data["stride"], data["dilation"], data["output_padding"]
        gh, lh = _transposed_grid(h, kh, sh, dh, t, b, oph)
        gw, lw = _transposed_grid(w, kw, sw, dw, left, right, opw)
        assert count(found, "pad") == gh * gw - lh * lw
        assert count(found, "zero") == lh * lw - h * w
        # Rows/columns there only for output_padding or a negative padding after
        # (transposed "same"): the last ones of the output and of the grid.
        eh, ew = oph + max(-b, 0), opw + max(-right, 0)
        ho, wo = data["output_shape"][2:]
        added = ho * wo - (ho - eh) * (wo - ew) + gh * gw - (gh - eh) * (gw - ew)
        assert count(found, "extra") == added
    else:
        assert count(found, "pad") == (h + t + b) * (w + left + right) - h * w
        assert count(found, "zero") == 0


@pytest.mark.parametrize("name", ["conv.gif", "conv.png", "conv.apng"])
def test_animations_have_a_frame_per_output(tmp_path, name):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / name
    result = run("shape", "7x7", "-k", "3x3", "--stride", "2", "--diagram", str(path))
    assert result.exit_code == 0 and result.output.startswith("output: (1, 1, 3, 3)")
    with Image.open(path) as im:
        assert im.n_frames == 9
        for k in range(9):
            im.seek(k)
            im.load()
    assert path.stat().st_size < 1_000_000


def test_values_are_the_npy_pixels_and_what_apply_computes(tmp_path):
    x = np.random.default_rng(3).integers(0, 9, size=(1, 1, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    kernel = tmp_path / "k.json"
    kernel.write_text('{"weight": [[1, 2], [0, -1]], "flip": true, "bias": 0.5}')
    picture = tmp_path / "sum.svg"
    args = ["-k", str(kernel), "--padding", "1", "--stride", "2"]
    result = run("shape", str(tmp_path / "x.npy"), *args, "--values", "--diagram", str(picture))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.npy"
    result = run("apply", str(tmp_path / "x.npy"), *args, "--pad-mode", "zeros", "-o", str(out))
    assert result.exit_code == 0, result.output
    expected = ref_conv2d(
        x, np.array([[[[-1, 0], [2, 1]]]]), [0.5], stride=(2, 2), pads=(1, 1, 1, 1)
    )[0, 0]
    np.testing.assert_allclose(np.load(out).reshape(expected.shape), expected, rtol=1e-6)
    root = ET.parse(picture).getroot()
    for rect in root.iter(f"{SVG}rect"):
        kind = rect.get("class", "").split()
        r, c = int(rect.get("data-row", -1)), int(rect.get("data-col", -1))
        if "output" in kind:
            assert float(rect.get("data-value")) == pytest.approx(expected[r, c])
        elif "input" in kind:
            assert float(rect.get("data-value")) == x[0, 0, r - 1, c - 1]


def test_values_for_a_shape_are_a_ramp(tmp_path):
    picture = tmp_path / "ramp.svg"
    result = run("shape", "3x4", "-k", "box:3", "--values", "--diagram", str(picture))
    assert result.exit_code == 0, result.output
    root = ET.parse(picture).getroot()
    values = [
        float(e.get("data-value"))
        for e in root.iter(f"{SVG}rect")
        if "input" in e.get("class", "").split()
    ]
    assert values == list(range(12))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["40x40", "-k", "3x3", "--diagram", "{tmp}/a.svg"], "up to 32x32 cells"),
        (["5x5", "-k", "3x3", "--diagram", "{tmp}/a.jpg"], "use .svg (a picture)"),
        (["5x5", "-k", "3x3", "--diagram", "-"], "standard output carries the shape text"),
        (["5x5", "-k", "3x3", "--values"], "add --diagram PATH"),
        (["5x5", "-k", "3x3", "--values", "--diagram", "{tmp}/a.svg"], "-k 3x3 is a shape"),
        (
            ["1,3,5,5", "-k", "box:3", "--filters", "2", "--values", "--diagram", "{tmp}/a.svg"],
            "sums 3 input",
        ),
        (
            ["--input", "8x8", "--layer", "k=3", "--values", "--diagram", "{tmp}/a.svg"],
            "--layer chains",
        ),
        (
            ["--input", "8x8", "--layer", "k=3", "--layer", "k=3", "--diagram", "{tmp}/a.svg"],
            "put {index} in the name, e.g. ",
        ),
        (["--input", "40x8", "--layer", "k=3", "--diagram", "{tmp}/a.svg"], "layer 1: "),
        (["3x3", "-k", "3x3", "--padding", "3", "--pad-mode", "reflect"], "must be smaller"),
        (["3x3", "-k", "3x3", "--transpose", "--pad-mode", "reflect"], "pads with zeros"),
    ],
)
def test_what_cannot_be_drawn_is_one_error_line_and_no_file(tmp_path, args, needle):
    result = run("shape", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and result.output.count("\n") == 1, result.output
    assert not list(tmp_path.iterdir())


def test_a_picture_never_overwrites_the_input_or_the_kernel(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 4), np.float32))
    (tmp_path / "k.txt").write_text("1 0; 0 1")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for target in ("x.npy", "k.txt"):  # through a link with a picture's name
        link = tmp_path / f"{target}.svg"
        link.symlink_to(tmp_path / target)
        result = run(
            "shape",
            str(tmp_path / "x.npy"),
            "-k",
            str(tmp_path / "k.txt"),
            "--values",
            "--diagram",
            str(link),
        )
        assert result.exit_code == 2, result.output
        assert "never overwrites its inputs" in result.output and target in result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.is_symlink()} == before


def test_a_chain_draws_a_picture_per_layer(tmp_path):
    template = str(tmp_path / "layer-{index}.svg")
    result = run(
        "shape",
        "--input",
        "1,3,9,9",
        "--layer",
        "k=3,s=2,p=1",
        "--layer",
        "k=2,s=1,t=1",
        "--pad-mode",
        "replicate",
        "--diagram",
        template,
    )
    assert result.exit_code == 0, result.output
    first, second = classes(tmp_path / "layer-1.svg"), classes(tmp_path / "layer-2.svg")
    assert count(first, "input") == 81 and count(first, "output") == 25
    assert count(second, "input") == 25 and count(second, "output") == 36
    assert count(second, "zero") == 0 and count(second, "pad") == 7 * 7 - 25
    texts = [t.text for t in ET.parse(tmp_path / "layer-1.svg").getroot().iter(f"{SVG}text")]
    assert "padding 1, replicate: each padded cell copies the input cell" in " ".join(texts)


def test_a_filter_files_pad_mode_applies_unless_given(tmp_path):
    config = tmp_path / "f.json"
    config.write_text('{"weight": "box:3", "padding": 1, "pad_mode": "symmetric"}')
    result = run("shape", "4x4", "-k", str(config), "--json")
    assert json.loads(result.output)["padding_mode"] == "symmetric"
    result = run("shape", "4x4", "-k", str(config), "--pad-mode", "zeros", "--json")
    assert json.loads(result.output)["padding_mode"] == "zeros"
    result = run("shape", "4x4", "-k", str(config), "--transpose", "--json")  # upsample's
    assert result.exit_code == 0 and json.loads(result.output)["padding_mode"] == "zeros"


def test_capped_frames_are_said_on_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(raster, "FRAME_PIXELS", 2_000_000)
    result = CliRunner().invoke(
        cli, ["shape", "8x8", "-k", "3x3", "--diagram", str(tmp_path / "a.gif")]
    )
    assert result.exit_code == 0 and (tmp_path / "a.gif").exists()
    assert "Warning: " in result.output and "of 36 output positions are drawn" in result.output


def test_shape_pad_modes_are_the_librarys():
    assert sorted(PAD_MODES) == sorted(padding.PAD_MODES)


def test_shape_help_loads_neither_numpy_nor_pillow():
    code = (
        "import contextlib, io, sys\n"
        "from convcli.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['shape', '--help'])\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = {name.split(".")[0] for name in out.split()}
    assert not loaded & {"numpy", "PIL"}
