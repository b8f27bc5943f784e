"""ImageMagick's convolution kernels (``im:NAME``) against ImageMagick itself: the matrix
``convert -define morphology:showKernel=1 -morphology Convolve:1 NAME`` prints, with
its shape, origin and angle (skipped when /usr/bin/convert is missing; CI installs it)."""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from convcli import KernelError
from convcli.kernels.imagemagick import Geometry, imagemagick_kernel

CONVERT = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in

SPECS = [
    "Unity", "Unity:0.5", "Gaussian", "Gaussian:0x2", "Gaussian:2", "Gaussian:3x1",
    "Gaussian:0x0.5", "Gaussian:0x4.5", "Gaussian:0x1000", "Blur:0x3", "Blur:0x1,90",
    "Blur:2x1+90", "Blur:0x1+180", "Blur:0x1,270", "Blur:0x0.3", "Comet:0x2", "Comet:0x1,90",
    "Comet:0x1,180", "Comet:0x1,270", "Comet:5x2", "Comet:0x3.5", "DoG:0,0,2", "DoG:0,2,3",
    "DoG:3,1,2", "DoG:0,3,1", "LoG:0x1.5", "LoG:3x1", "LoG:0x0.8", "Laplacian", "Laplacian:1",
    "Laplacian:2", "Laplacian:3", "Laplacian:4", "Laplacian:5", "Laplacian:7", "Laplacian:15",
    "Laplacian:19", "Sobel", "Sobel:45", "Sobel:90", "Sobel:135", "Sobel:180", "Sobel:225",
    "Sobel:270", "Sobel:315", "Sobel:-90", "Sobel:30", "Sobel:100", "Roberts", "Roberts:45",
    "Roberts:90", "Roberts:180", "Roberts:270", "Prewitt", "Prewitt:90", "Compass",
    "Compass:45", "Compass:270", "Kirsch", "Kirsch:135", "FreiChen", "FreiChen:1",
    "FreiChen:2", "FreiChen:11", "FreiChen:12", "FreiChen:13", "FreiChen:14", "FreiChen:15",
    "FreiChen:16", "FreiChen:17", "FreiChen:18", "FreiChen:19", "FreiChen:45", "FreiChen:2,90",
    "FreiChen:0,180", "Binomial", "Binomial:2", "Binomial:1.5", "Comet:2.5x2", "sobel:90",
    "GAUSSIAN:0x1", "Blur:0x40",
]  # fmt: skip

_HEADER = re.compile(r'^Kernel(?: #\d+)? "([^"]+)" of size (\d+)x(\d+)([+-]\d+)([+-]\d+)')


@pytest.fixture(scope="module")
def shown() -> dict[str, tuple[str, np.ndarray, tuple[int, int]]]:
    """What ImageMagick prints for each of SPECS: (label, matrix, origin), all from one
    run (a ';' list of kernels prints each of them)."""
    if not os.access(CONVERT, os.X_OK):
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")
    command = [CONVERT, "xc:", "-define", "morphology:showKernel=1"]
    command += ["-morphology", "Convolve:1", ";".join(SPECS), "null:"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    kernels, rows = [], None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            name, width, height, x, y = header.groups()
            rows = []
            kernels.append((name, int(width), int(height), (int(x), int(y)), rows))
        elif rows is not None and re.match(r"^\s*\d+:", line):
            rows.append([float(v) for v in line.split(":", 1)[1].split()])
    assert len(kernels) == len(SPECS)
    return {
        spec: (name, np.array(rows).reshape(height, width), origin)
        for spec, (name, width, height, origin, rows) in zip(SPECS, kernels, strict=True)
    }


@pytest.mark.parametrize("spec", SPECS)
def test_the_matrix_imagemagick_prints(shown, spec):
    label, expected, origin = shown[spec]
    matrix, ours_origin, ours_label = imagemagick_kernel(spec)
    assert matrix.shape == expected.shape and ours_origin == origin
    assert ours_label.split()[0] == label
    # ImageMagick prints 6 significant digits
    np.testing.assert_allclose(matrix, expected, rtol=6e-6, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("", (0, 0, 0, 0)),
        ("0x2", (0, 2, 0, 0)),
        ("0,0,2", (0, 0, 2, 0)),
        ("0x1,90", (0, 1, 90, 0)),
        ("2x1+90", (2, 1, 90, 0)),
        ("x3", (0, 3, 0, 0)),
        ("-90", (-90, 0, 0, 0)),
        ("1.5e1x.5/7/8", (15, 0.5, 7, 8)),
        ("30x-20", (30, -20, 0, 0)),  # ParseGeometry's negative height
        (" 0 x 2 ", (0, 2, 0, 0)),
    ],
)
def test_geometry_arguments_as_imagemagick_reads_them(text, values):
    g = Geometry(text, "im:X")
    assert (g.rho, g.sigma, g.xi, g.psi) == values


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("Disk", "morphology shapes or distance kernels, not a convolution kernel"),
        ("Gausian:0x2", "did you mean im:Gaussian?"),
        ("Sobel;Prewitt", "';'-separated list"),
        ("Sobel:@", "rotation flags"),
        ("Sobel:45>", "rotation flags"),
        ("FreiChen:10", "a list of nine kernels"),
        ("Blur:0x1,45", "rotates only 3x3 kernels by 45 degrees"),
        ("Gaussian:0x2q", "cannot read the arguments '0x2q'"),
        ("Gaussian:1.5x3", "the radius 1.5 must be a whole number of pixels"),
        ("Blur:0x1000", "at most 1001"),
        ("Blur:600", "at most 1001"),
    ],
)
def test_what_convcli_cannot_make_is_refused(spec, needle):
    with pytest.raises(KernelError, match=re.escape(needle)):
        imagemagick_kernel(spec)


def test_im_specs_load_through_the_loader_centred_and_as_printed():
    from convcli.kernels.describe import describe_filter
    from convcli.kernels.loader import load_filter

    comet = load_filter("IM:comet:0x1")  # names and the prefix are case-insensitive
    matrix, origin, _ = imagemagick_kernel("Comet:0x1")
    np.testing.assert_array_equal(comet.weight, np.pad(matrix, ((0, 0), (4, 0))))
    assert comet.offcentre[1] == (0, 0) and comet.source == "IM:comet:0x1"
    shown = describe_filter(comet)
    assert shown.splitlines()[0].split()[0] == "0.644774"  # the 5 values, as ImageMagick
    assert "shape: 1x5, origin +0+0 (column, row), applied as the 1x9 centred on it" in shown
    assert "-morphology Correlate" in shown and "--flip" in shown
    sobel = load_filter("im:Sobel:90")
    assert sobel.offcentre is None and sobel.weight[0].tolist() == [1, 2, 1]
    old_style = load_filter("im:1,2,1, 2,4,2, 1,2,1")  # ImageMagick's plain list: a square
    assert old_style.weight.shape == (3, 3) and old_style.warnings == ()
    array = load_filter("im:3x3: 1,2,1 2,4,2 1,2,1")
    np.testing.assert_array_equal(array.weight, old_style.weight)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("im:1,2,1,2,4,2,1,2", "needs 9, 25, 49, ... values (k*k); got 8"),
        ("im:", "give an ImageMagick kernel after im: (Unity, Gaussian"),
        ("im:Sobel:q", "cannot read the arguments 'q'"),
    ],
)
def test_im_spec_errors(spec, needle):
    from convcli.kernels.loader import load_filter

    with pytest.raises(KernelError, match=re.escape(needle)):
        load_filter(spec)
