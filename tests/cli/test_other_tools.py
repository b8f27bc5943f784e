"""README's "Coming from other tools": each row that no other test proves, through the
real command against the peer itself (ImageMagick, OpenCV, libvips, Pillow, PyTorch),
within one 8-bit level, or to float32 rounding on ``.npy`` values. Each skips only when
its peer is not installed; CI installs them all.

Rows proved elsewhere: ``gaussian:0,σ`` = ``cv2.GaussianBlur``, ``-k sobel`` =
``cv2.Sobel`` + ``cv2.magnitude``, ``vips sobel``, ``im:`` kernels with ``-morphology
Correlate/Convolve`` and ``-convolve``, ``-k bicubic`` = ``interpolate(mode="bicubic")``,
``-k lanczos`` ~ Pillow's LANCZOS (``test_peer_kernels.py``); ``upsample`` =
``interpolate(mode="bilinear")`` and ``--pad-mode zeros`` = ``conv_transpose2d``
(``test_commands.py``); ``--background`` = ``-flatten`` / ``vips flatten``
(``test_flatten_and_metadata.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.cli.test_peer_kernels import convcli_npy, convcli_png, photo  # noqa: F401

IMAGEMAGICK = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in
# An asymmetric 5x5 kernel (a border 2 pixels wide tells every padding mode apart) that
# sums to 4: -convolve's normalization shows, and the result stays mostly in range.
K5 = np.array(
    [[1, 0, 2, 0, 1], [0, 3, 0, -1, 0], [1, 0, -4, 0, 2], [0, 0, 1, 0, 0], [2, 0, 0, 0, -4]],
    np.float64,
)


def inline(kernel: np.ndarray) -> str:
    """A kernel as convcli's inline matrix: rows ended by ';'."""
    return "; ".join(" ".join(f"{v:g}" for v in row) for row in kernel)


def assert_within_one_level(result: np.ndarray, expected: np.ndarray) -> None:
    """At most one level apart, and not one level apart throughout (peers that truncate,
    as libvips' cast to 8 bits, differ by one in about 40 % of the values)."""
    difference = np.abs(result.astype(np.int32) - np.asarray(expected, np.int32))
    assert difference.max() <= 1, np.argwhere(difference > 1)[:5]
    assert difference.mean() < 0.5


# ImageMagick ---------------------------------------------------------------------------------


def imagemagick(tmp_path, image, *operation: str) -> np.ndarray:
    if not os.access(IMAGEMAGICK, os.X_OK):
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")
    out = tmp_path / "im.png"
    subprocess.run([IMAGEMAGICK, str(image), *operation, str(out)], check=True)
    return np.asarray(PILImage.open(out).convert("RGB"))


@pytest.mark.parametrize(
    ("virtual_pixel", "pad_mode"),
    [("Edge", "replicate"), ("Mirror", "symmetric"), ("Tile", "circular"), ("Black", "zeros")],
)
def test_imagemagick_virtual_pixels_are_pad_modes(tmp_path, photo, virtual_pixel, pad_mode):  # noqa: F811
    """``-virtual-pixel V -morphology Correlate K`` = ``-k K --pad-mode M``; Edge is
    ImageMagick's default."""
    path, _ = photo
    k = K5 / 4
    matrix = " ".join(",".join(f"{v:g}" for v in row) for row in k)
    expected = imagemagick(
        tmp_path,
        path,
        "-virtual-pixel",
        virtual_pixel,
        "-morphology",
        "Correlate",
        f"5x5: {matrix}",
    )
    result = convcli_png(tmp_path, "apply", path, "-k", inline(k), "--pad-mode", pad_mode)
    assert_within_one_level(result, expected)


def test_imagemagick_convolve_normalizes_flip_convolves_and_bias(tmp_path, photo):  # noqa: F811
    """``-convolve K`` divides K by its sum (``--normalize``); ``-morphology Convolve K``
    rotates it (``--flip``); ``-bias 20%`` adds 0.2 (``--bias 0.2``)."""
    path, _ = photo
    flat = ",".join(f"{v:g}" for v in K5.ravel())
    normalized = imagemagick(tmp_path, path, "-convolve", flat)
    result = convcli_png(tmp_path, "apply", path, "-k", inline(K5), "--normalize",
                         "--pad-mode", "replicate")  # fmt: skip
    assert_within_one_level(result, normalized)
    matrix = " ".join(",".join(f"{v:g}" for v in row) for row in K5 / 8)
    convolved = imagemagick(tmp_path, path, "-bias", "20%", "-morphology", "Convolve",
                            f"5x5: {matrix}")  # fmt: skip
    result = convcli_png(tmp_path, "apply", path, "-k", inline(K5 / 8), "--flip", "--bias",
                         "0.2", "--pad-mode", "replicate")  # fmt: skip
    assert_within_one_level(result, convolved)


# OpenCV --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("border", "pad_mode"),
    [
        ("BORDER_DEFAULT", None),  # = BORDER_REFLECT_101 = convcli's reflect, the default
        ("BORDER_REFLECT", "symmetric"),
        ("BORDER_REPLICATE", "replicate"),
        ("BORDER_CONSTANT", "zeros"),
        ("BORDER_WRAP", "circular"),  # filter2D refuses it: copyMakeBorder, then filter2D
    ],
)
def test_opencv_filter2d_and_its_border_types(tmp_path, photo, border, pad_mode):  # noqa: F811
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    k = (K5 / 4).astype(np.float32)
    if border == "BORDER_WRAP":
        padded = cv2.copyMakeBorder(pixels, 2, 2, 2, 2, cv2.BORDER_WRAP)
        expected = cv2.filter2D(padded, -1, k)[2:-2, 2:-2]
    else:
        expected = cv2.filter2D(pixels, -1, k, borderType=getattr(cv2, border))
    options = ["--pad-mode", pad_mode] if pad_mode else []
    result = convcli_png(tmp_path, "apply", path, "-k", inline(K5 / 4), *options)
    assert_within_one_level(result, expected)


def test_opencv_even_kernels_anchor_and_delta(tmp_path, photo):  # noqa: F811
    """filter2D centres a 4x4 kernel at (2, 2): two rows above, one below
    (``--padding 2,1,2,1``, where ``same`` puts the extra row below); ``delta=d`` on
    8-bit pixels is ``--bias d/255``."""
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    k = np.arange(16, dtype=np.float32).reshape(4, 4) / 120 - 0.05
    expected = cv2.filter2D(pixels, -1, k, delta=30)
    result = convcli_png(tmp_path, "apply", path, "-k", inline(k), "--padding", "2,1,2,1",
                         "--bias", repr(30 / 255))  # fmt: skip
    assert_within_one_level(result, expected)
    raw = cv2.filter2D(pixels.astype(np.float32) / 255, -1, k)  # in floats: to rounding
    np.testing.assert_allclose(
        convcli_npy(tmp_path, "apply", path, "-k", inline(k), "--padding", "2,1,2,1"),
        raw.transpose(2, 0, 1),
        atol=1e-5,
    )


def test_opencv_blur_is_box(tmp_path, photo):  # noqa: F811
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    assert_within_one_level(
        convcli_png(tmp_path, "apply", path, "-k", "box:5"), cv2.blur(pixels, (5, 5))
    )


@pytest.mark.parametrize(
    ("interpolation", "kernel"),
    [("INTER_LINEAR", "bilinear"), ("INTER_CUBIC", "bicubic"), ("INTER_NEAREST", "nearest")],
)
@pytest.mark.parametrize("factor", [2, 3])
def test_opencv_resize_is_upsample(tmp_path, photo, interpolation, kernel, factor):  # noqa: F811
    """``cv2.resize(fx=F, fy=F)``: half-pixel centres and the edge repeated, as
    ``upsample`` (OpenCV's 8-bit LINEAR and CUBIC round in fixed point: one level)."""
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    expected = cv2.resize(
        pixels, None, fx=factor, fy=factor, interpolation=getattr(cv2, interpolation)
    )
    result = convcli_png(tmp_path, "upsample", path, "--factor", str(factor), "-k", kernel)
    difference = np.abs(result - expected.astype(np.int16))
    assert difference.max() <= (0 if kernel == "nearest" else 1)
    assert difference.mean() < 0.2


# libvips -------------------------------------------------------------------------------------


def vips(*args) -> None:
    if shutil.which("vips") is None:
        pytest.skip("libvips' command line (vips) is not installed")
    subprocess.run(["vips", *map(str, args)], check=True)


def test_vips_conv_with_a_mat_file(tmp_path, photo):  # noqa: F811
    """``vips conv in out mask.mat``: a correlation with the edge repeated, the sum
    divided by the .mat's scale plus its offset; float precision (its default) gives
    convcli's values, and vips' 8-bit output truncates where convcli rounds."""
    tifffile = pytest.importorskip("tifffile")
    path, _ = photo
    mask = tmp_path / "mask.mat"
    rows = "\n".join(" ".join(f"{v:g}" for v in row) for row in K5)
    mask.write_text(f"5 5 4 20\n{rows}\n")  # scale 4, offset 20
    vips("conv", path, tmp_path / "vips.tif", mask)
    expected = tifffile.imread(tmp_path / "vips.tif").astype(np.float64)
    raw = convcli_npy(tmp_path, "apply", path, "-k", mask, "--pad-mode", "replicate")
    np.testing.assert_allclose(raw.transpose(1, 2, 0) * 255, expected, rtol=1e-5, atol=1e-3)
    vips("conv", path, tmp_path / "vips.png", mask)  # cast to 8 bits: truncated
    eight_bit = np.asarray(PILImage.open(tmp_path / "vips.png"))
    result = convcli_png(tmp_path, "apply", path, "-k", mask, "--pad-mode", "replicate")
    assert_within_one_level(result, eight_bit)


# Pillow --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 5])
def test_pillow_kernel_flips_rows_and_leaves_the_border(tmp_path, photo, size):  # noqa: F811
    """``ImageFilter.Kernel((k, k), K, scale, offset)`` correlates with K's rows in
    reverse order (``-k`` of K upside down, divided by scale, ``--bias offset/255``), and
    copies the outer (k-1)/2 pixels unfiltered; inside, within one level."""
    from PIL import ImageFilter

    path, pixels = photo
    k = K5 if size == 5 else np.array([[1, 2, 3], [0, 1, 0], [-1, -2, 0]], np.float64)
    scale, offset = 2.0, 40
    pillow = ImageFilter.Kernel((size, size), k.ravel().tolist(), scale=scale, offset=offset)
    expected = np.asarray(PILImage.fromarray(pixels).filter(pillow))
    result = convcli_png(tmp_path, "apply", path, "-k", inline(k[::-1] / scale), "--bias",
                         repr(offset / 255))  # fmt: skip
    inside = slice(size // 2, -(size // 2))
    assert_within_one_level(result[inside, inside], expected[inside, inside])
    assert np.array_equal(expected[0], pixels[0])  # Pillow's border: the input as it was


def test_pillow_boxblur_and_resize(tmp_path, photo):  # noqa: F811
    """``ImageFilter.BoxBlur(r)`` is ``box:2r+1`` with the edge repeated; ``resize`` by
    an integer factor with BILINEAR is ``upsample``, NEAREST ``-k nearest``."""
    from PIL import ImageFilter

    path, pixels = photo
    image = PILImage.fromarray(pixels)
    for radius in (1, 2):
        expected = np.asarray(image.filter(ImageFilter.BoxBlur(radius)))
        result = convcli_png(tmp_path, "apply", path, "-k", f"box:{2 * radius + 1}",
                             "--pad-mode", "replicate")  # fmt: skip
        assert_within_one_level(result, expected)
    size = (image.width * 2, image.height * 2)
    expected = np.asarray(image.resize(size, PILImage.Resampling.BILINEAR))
    assert_within_one_level(convcli_png(tmp_path, "upsample", path), expected)
    expected = np.asarray(image.resize(size, PILImage.Resampling.NEAREST))
    assert np.array_equal(convcli_png(tmp_path, "upsample", path, "-k", "nearest"), expected)


# PyTorch -------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
def test_torch_conv2d_options_are_the_commands(tmp_path):
    """``F.conv2d(x, w, b, stride, padding, dilation, groups)`` with a weight file and
    raw ``.npy`` values in and out; ``padding="same"`` (even kernels: the extra row and
    column at the end, as torch) and ``nn.Conv2d``'s padding modes."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.random((3, 13, 17)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    tx = torch.from_numpy(x[None])
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)  # groups=3: 2 filters per channel
    b = rng.standard_normal(6).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    bias = ",".join(repr(float(v)) for v in b)
    expected = torch.nn.functional.conv2d(
        tx, torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=2, dilation=2, groups=3
    )[0].numpy()
    result = convcli_npy(
        tmp_path, "apply", tmp_path / "x.npy", "-k", tmp_path / "w.npy", "--bias", bias,
        "--stride", "2", "--padding", "2", "--dilation", "2", "--groups", "3",
        "--pad-mode", "zeros",
    )  # fmt: skip
    np.testing.assert_allclose(result, expected, atol=1e-5)
    even = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "even.npy", even)
    expected = torch.nn.functional.conv2d(tx, torch.from_numpy(even), padding="same")[0].numpy()
    result = convcli_npy(tmp_path, "apply", tmp_path / "x.npy", "-k", tmp_path / "even.npy",
                         "--padding", "same", "--pad-mode", "zeros")  # fmt: skip
    np.testing.assert_allclose(result, expected, atol=1e-5)
    for mode in ("reflect", "replicate", "circular"):
        layer = torch.nn.Conv2d(3, 2, 5, padding=2, padding_mode=mode)
        np.save(tmp_path / "layer.npy", layer.weight.detach().numpy())
        with torch.no_grad():
            expected = layer(tx)[0].numpy()
        bias = ",".join(repr(float(v)) for v in layer.bias.detach().numpy())
        result = convcli_npy(tmp_path, "apply", tmp_path / "x.npy", "-k", tmp_path / "layer.npy",
                             "--bias", bias, "--pad-mode", mode)  # fmt: skip
        np.testing.assert_allclose(result, expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_torch_interpolate_nearest_is_upsample_nearest(tmp_path, mode):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(12).random((3, 7, 9)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x[None]), scale_factor=3, mode=mode
    )[0].numpy()
    result = convcli_npy(tmp_path, "upsample", tmp_path / "x.npy", "--factor", "3",
                         "-k", "nearest")  # fmt: skip
    np.testing.assert_array_equal(result, expected)


def test_every_test_the_readme_names_exists():
    """The tables name tests, as ``file.py::test`` or, in this file, ``test``; each must
    exist."""
    import re

    from tests.paths import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Coming from other tools")[1].split("\n## ")[0]
    named = re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+)`", section)
    assert len(named) >= 20
    for file, test in named:
        source = (ROOT / "tests" / "cli" / (file or "test_other_tools.py")).read_text()
        assert f"def {test}(" in source, (file, test)
