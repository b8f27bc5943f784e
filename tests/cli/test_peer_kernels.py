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
