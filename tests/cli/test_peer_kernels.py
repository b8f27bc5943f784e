"""The kernels of issue 14 through the real command, against the peers users come from:
OpenCV (gradient magnitude, size from sigma), PyTorch (bicubic upsampling), Pillow
(Lanczos), libvips (``vips sobel``) and ImageMagick (``im:`` kernels). Each comparison
skips when its peer is not installed; CI installs them all."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from convcli.cli.app import cli
from convcli.kernels import load_filter
from tests.paths import SAMPLES


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def convcli_npy(tmp_path, command: str, image, *options: str) -> np.ndarray:
    """convcli's raw float result (C, H, W) for an image file, through the command."""
    out = tmp_path / "out.npy"
    result = run(command, str(image), *options, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    return np.load(out)


def convcli_png(tmp_path, command: str, image, *options: str) -> np.ndarray:
    """convcli's 8-bit result (H, W[, C]) for an image file, through the command."""
    out = tmp_path / "out.png"
    result = run(command, str(image), *options, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    return np.asarray(PILImage.open(out)).astype(np.int16)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 96x80 RGB crop of a sample photo, as an 8-bit PNG, and its pixels (H, W, 3)."""
    pixels = np.asarray(PILImage.open(SAMPLES / "chelsea.png").convert("RGB"))[40:136, 60:140]
    path = tmp_path_factory.mktemp("peers") / "photo.png"
    PILImage.fromarray(pixels).save(path)
    return path, pixels


# gaussian:0,sigma: OpenCV's size from sigma ------------------------------------------------


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.0, 3.3])
def test_gaussian_size_from_sigma_is_opencvs(tmp_path, photo, sigma):
    """``gaussian:0,s`` is ``cv2.GaussianBlur(img, (0, 0), s)`` on an 8-bit image: the
    kernel cv2 picks for that size (its 8-bit rule), within one level of its pixels."""
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    expected = cv2.GaussianBlur(pixels, (0, 0), sigma)  # BORDER_REFLECT_101 = our reflect
    np.testing.assert_allclose(
        convcli_png(tmp_path, "apply", path, "-k", f"gaussian:0,{sigma}"), expected, atol=1
    )
    # The size convcli picked gives cv2's 8-bit pixels exactly, and cv2's samples
    shown = run("kernels", f"gaussian:0,{sigma}").output
    size = int(shown.split("shape: ")[1].split("x")[0])
    assert np.array_equal(cv2.GaussianBlur(pixels, (size, size), sigma), expected)
    g = cv2.getGaussianKernel(size, sigma, ktype=cv2.CV_64F)
    np.testing.assert_allclose(
        load_filter(f"gaussian:0,{sigma}").weight, g @ g.T, rtol=1e-12, atol=1e-15
    )


# upsample -k bicubic / lanczos: PyTorch and Pillow ------------------------------------------


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_upsampling_is_torchs_borders_included(tmp_path, photo, factor):
    """``upsample -k bicubic`` (default edge padding) equals
    ``interpolate(mode="bicubic", align_corners=False)`` everywhere: torch clamps the
    source index at the borders, which is what replicate padding does."""
    torch = pytest.importorskip("torch")
    path, pixels = photo
    result = convcli_npy(tmp_path, "upsample", path, "--factor", str(factor), "-k", "bicubic")
    x = torch.from_numpy(pixels.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    expected = torch.nn.functional.interpolate(
        x, scale_factor=factor, mode="bicubic", align_corners=False
    )[0].numpy()
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, atol=2e-6)


def lanczos_reference(x: np.ndarray, factor: int, lobes: int) -> np.ndarray:
    """Half-pixel Lanczos upsampling of a 2-D array by plain loops, as Pillow's resample
    computes each output pixel's weights (centre (o + 0.5) / factor, taps within ``lobes``
    input pixels, divided by their sum), with edge pixels repeated outside the image."""

    def lanczos(t: float) -> float:
        return float(np.sinc(t) * np.sinc(t / lobes)) if abs(t) < lobes else 0.0

    def one_axis(rows: np.ndarray) -> np.ndarray:
        n = rows.shape[1]
        out = np.zeros((rows.shape[0], n * factor))
        for o in range(n * factor):
            centre = (o + 0.5) / factor
            taps = range(int(np.floor(centre - lobes)) - 1, int(np.ceil(centre + lobes)) + 1)
            weights = [lanczos(i + 0.5 - centre) for i in taps]
            for i, w in zip(taps, weights, strict=True):
                out[:, o] += w / sum(weights) * rows[:, min(max(i, 0), n - 1)]
        return out

    return one_axis(one_axis(x).T).T


@pytest.mark.parametrize(("factor", "lobes"), [(2, 3), (3, 3), (2, 2), (4, 2)])
def test_lanczos_upsampling_is_pillows_weights_with_edge_padding(tmp_path, factor, lobes):
    rng = np.random.default_rng(factor * 10 + lobes)
    pixels = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    path = tmp_path / "small.png"
    PILImage.fromarray(pixels).save(path)
    spec = f"lanczos:{factor},{lobes}" if lobes != 3 else "lanczos"
    result = convcli_npy(tmp_path, "upsample", path, "--factor", str(factor), "-k", spec)
    expected = lanczos_reference(pixels / 255.0, factor, lobes)
    np.testing.assert_allclose(result[0], expected, atol=2e-6)


@pytest.mark.parametrize("factor", [2, 3])
def test_lanczos_upsampling_is_within_one_level_of_pillow_inside(tmp_path, photo, factor):
    """Pillow's ``resize(LANCZOS)``: within one 8-bit level where its window stays inside
    the image (at the borders Pillow drops the outside taps, convcli repeats the edge). The
    image spans 64..191 so that no ringing clips Pillow's 8-bit first pass."""
    path, pixels = photo
    pixels = (64 + pixels.astype(np.int32) // 2).astype(np.uint8)
    PILImage.fromarray(pixels).save(path := tmp_path / "mid.png")
    result = convcli_png(tmp_path, "upsample", path, "--factor", str(factor), "-k", "lanczos")
    height, width = pixels.shape[:2]
    expected = PILImage.fromarray(pixels).resize(
        (width * factor, height * factor), PILImage.Resampling.LANCZOS
    )
    inside = slice(4 * factor, -4 * factor)
    difference = result[inside, inside] - np.asarray(expected, np.int16)[inside, inside]
    assert np.abs(difference).max() <= 1
    assert abs(difference.mean()) < 0.02  # Pillow's rounded first pass, not a bias


# Gradient magnitude: OpenCV, libvips ---------------------------------------------------------


def cv2_magnitude(cv2, pixels: np.ndarray, name: str, border: int) -> np.ndarray:
    """Per channel ``cv2.magnitude`` of the x and y responses of ``name`` on 0..1 floats."""
    x = pixels.astype(np.float32) / 255
    if name == "sobel":
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=border)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=border)
    elif name == "scharr":
        gx = cv2.Scharr(x, cv2.CV_32F, 1, 0, borderType=border)
        gy = cv2.Scharr(x, cv2.CV_32F, 0, 1, borderType=border)
    else:  # OpenCV has no Prewitt function: its kernels through filter2D (a correlation)
        k = np.array([[-1, 0, 1]] * 3, np.float32)
        gx = cv2.filter2D(x, cv2.CV_32F, k, borderType=border)
        gy = cv2.filter2D(x, cv2.CV_32F, k.T.copy(), borderType=border)
    return cv2.magnitude(gx, gy)


@pytest.mark.parametrize("name", ["sobel", "scharr", "prewitt"])
@pytest.mark.parametrize("pad_mode", [None, "replicate"])
def test_gradient_magnitude_is_opencvs_sobel_and_magnitude(tmp_path, photo, name, pad_mode):
    """``-k sobel`` is ``cv2.magnitude(cv2.Sobel(x, 1, 0), cv2.Sobel(x, 0, 1))`` per
    channel, borders included (reflect is BORDER_REFLECT_101), as raw floats and as
    8-bit pixels."""
    cv2 = pytest.importorskip("cv2")
    path, pixels = photo
    border = cv2.BORDER_REFLECT_101 if pad_mode is None else cv2.BORDER_REPLICATE
    options = ["-k", name] + (["--pad-mode", pad_mode] if pad_mode else [])
    expected = cv2_magnitude(cv2, pixels, name, border)
    raw = convcli_npy(tmp_path, "apply", path, *options).transpose(1, 2, 0)
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-5)
    eight_bit = np.clip(np.rint(expected.astype(np.float64) * 255), 0, 255)
    np.testing.assert_allclose(convcli_png(tmp_path, "apply", path, *options), eight_bit, atol=1)


def vips_float(tmp_path, operation: str, image) -> tuple[np.ndarray, tuple[int, ...]]:
    """``vips OPERATION`` on the image cast to float (vips's own precise path), and the
    version of vips; skips when vips is not installed."""
    import shutil
    import subprocess

    tifffile = pytest.importorskip("tifffile")
    if shutil.which("vips") is None:
        pytest.skip("vips is not installed")
    version = subprocess.run(["vips", "--version"], capture_output=True, text=True, check=True)
    numbers = tuple(int(n) for n in version.stdout.split("-")[1].split()[0].split(".")[:2])
    as_float, out = tmp_path / "in.v", tmp_path / "out.tif"
    subprocess.run(["vips", "cast", str(image), str(as_float), "float"], check=True)
    subprocess.run(["vips", operation, str(as_float), str(out)], check=True)
    return tifffile.imread(out).astype(np.float64), numbers


def test_vips_sobel_is_a_bank_of_sobel_x_and_y(tmp_path, photo):
    """``vips sobel`` in float: libvips 8.14 adds |gx| + |gy| (a bank with
    "combine": "abs-sum"), 8.15 and later take sqrt(gx^2 + gy^2) (``-k sobel``); both
    repeat the edge at the borders (--pad-mode replicate)."""
    path, pixels = photo
    gray = tmp_path / "gray.png"
    PILImage.fromarray(pixels[..., 1]).save(gray)
    expected, version = vips_float(tmp_path, "sobel", gray)
    bank = tmp_path / "sobel-l1.json"
    bank.write_text('{"bank": ["sobel-x", "sobel-y"], "combine": "abs-sum"}')
    spec = str(bank) if version < (8, 15) else "sobel"
    raw = convcli_npy(tmp_path, "apply", gray, "-k", spec, "--pad-mode", "replicate")
    np.testing.assert_allclose(raw[0] * 255, expected, rtol=1e-5, atol=1e-3)


# im: kernels against ImageMagick's pixels ---------------------------------------------------

IM_IMAGE_SPECS = [
    "Gaussian:0x2", "Blur:0x3", "Blur:0x2,90", "Comet:0x2", "Comet:0x2,90", "DoG:0,0,2",
    "LoG:0x1.5", "Laplacian:5", "Sobel", "Sobel:90", "Roberts", "Prewitt:45", "Compass",
    "Kirsch:90", "FreiChen", "Unity:0.5",
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "method"),
    [(spec, method) for spec in IM_IMAGE_SPECS for method in ("Correlate", "Convolve")]
    # -convolve normalizes a kernel first: the same for those that sum to 1
    + [(spec, "-convolve") for spec in ("Gaussian:0x2", "Blur:0x2,90", "Comet:0x2")],
)
def test_im_kernels_give_imagemagicks_pixels(tmp_path, photo, spec, method):
    """``-k im:NAME`` is ``convert -morphology Correlate NAME`` and ``-convolve NAME``
    (the matrix as printed), and with ``--flip`` ``-morphology Convolve NAME`` (rotated
    180 degrees), within one 8-bit level, borders included: ImageMagick's default virtual
    pixels repeat the edge (``--pad-mode replicate``)."""
    import os
    import subprocess

    if not os.access("/usr/bin/convert", os.X_OK):
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")
    path, _ = photo
    expected_path = tmp_path / "im.png"
    operation = ["-convolve"] if method == "-convolve" else ["-morphology", method]
    command = ["/usr/bin/convert", str(path), *operation, spec, str(expected_path)]
    subprocess.run(command, check=True, capture_output=True)
    expected = np.asarray(PILImage.open(expected_path).convert("RGB")).astype(np.int16)
    options = ["-k", f"im:{spec}", "--pad-mode", "replicate"]
    result = convcli_png(tmp_path, "apply", path, *options, *(["--flip"] * (method == "Convolve")))
    difference = np.abs(result - expected)
    assert difference.max() <= 1, (spec, method, np.argwhere(difference > 1)[:5])
