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
