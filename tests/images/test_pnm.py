"""PGM/PPM at 8 and 16 bits, checked with OpenCV and Pillow as readers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli import ImageError, OutputError
from convcli.images.output_paths import output_format_for
from convcli.images.reading import read_image
from convcli.images.writing import to_integers, write_image


def _values(shape, top=65535, seed=0):
    return np.random.default_rng(seed).integers(
        0, top + 1, shape, np.uint16 if top > 255 else np.uint8
    )


def test_sixteen_bit_gray_pgm(tmp_path):
    gray = _values((7, 9))
    path = tmp_path / "g.pgm"
    assert write_image(gray[None] / 65535, str(path), depth=16) == []
    assert path.read_bytes().startswith(b"P5\n9 7\n65535\n")
    with PILImage.open(path) as im:  # Pillow reads 16-bit PGM as I;16 (or I)
        assert im.mode.startswith("I")
        np.testing.assert_array_equal(np.asarray(im), gray)
    cv2 = pytest.importorskip("cv2")
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), gray)


def test_sixteen_bit_rgb_ppm_and_its_alpha(tmp_path):
    rgba = _values((4, 6, 8), seed=1)
    path = tmp_path / "c.ppm"
    notes = write_image(rgba / 65535, str(path), depth=16)
    assert notes == [
        f"{path}: PPM has no alpha channel; flattened over white (--background to choose)"
    ]
    assert path.read_bytes().startswith(b"P6\n8 6\n65535\n")
    alpha = rgba[3] / 65535
    flat = np.rint(rgba[:3] * alpha + 65535 * (1 - alpha))  # over white, at 16 bits
    img = read_image(str(path))  # Pillow alone scales 16-bit P6 into 8 bits
    assert img.depth == 16
    np.testing.assert_allclose(to_integers(img.pixels[0], 16), flat, atol=1)
    cv2 = pytest.importorskip("cv2")
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(bgr[..., ::-1].transpose(2, 0, 1), flat, atol=1)


def test_sixteen_bit_ppm_from_opencv_and_other_maxvals(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = _values((5, 4, 3), seed=2)
    path = tmp_path / "cv.ppm"
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    np.testing.assert_array_equal(
        to_integers(read_image(str(path)).pixels[0], 16), rgb.transpose(2, 0, 1)
    )
    twelve = tmp_path / "twelve.ppm"
    twelve.write_bytes(b"P6\n# 12-bit\n1 1\n4095\n" + np.array([0, 4095, 1365], ">u2").tobytes())
    np.testing.assert_allclose(read_image(str(twelve)).pixels[0, :, 0, 0], [0, 1, 1 / 3], rtol=1e-6)
    cut = tmp_path / "cut.ppm"
    cut.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ImageError, match="cut.ppm: truncated"):
        read_image(str(cut))


def test_eight_bit_pnm_round_trip(tmp_path):
    rgb = _values((3, 5, 6), top=255, seed=3)
    path = tmp_path / "c.pnm"
    write_image(rgb / 255, str(path))
    with PILImage.open(path) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im).transpose(2, 0, 1), rgb)


def test_gray_to_ppm_is_p5_and_colour_to_pgm_is_refused(tmp_path):
    # netpbm's PPM readers take PGM input; PGM readers refuse PPM (P6) data.
    path = tmp_path / "gray.ppm"
    write_image(np.zeros((1, 2, 3)), str(path))
    assert path.read_bytes().startswith(b"P5\n")
    for name, kwargs in (("rgb.pgm", {}), ("rgb.out", {"fmt": "pgm"})):
        with pytest.raises(OutputError, match="PGM holds gray and the result is RGB"):
            write_image(np.zeros((3, 2, 3)), str(tmp_path / name), **kwargs)
        assert not (tmp_path / name).exists()
    write_image(np.zeros((3, 2, 3)), str(tmp_path / "rgb.out"), fmt="pnm")
    assert (tmp_path / "rgb.out").read_bytes().startswith(b"P6\n")
    assert output_format_for("x", "pnm") == output_format_for("x.pgm") == "PPM"


def test_sixteen_bit_input_gives_sixteen_bit_ppm_through_the_command(tmp_path):
    rgb = _values((6, 5, 3), seed=4)
    source = tmp_path / "in.ppm"
    source.write_bytes(b"P6\n5 6\n65535\n" + rgb.astype(">u2").tobytes())
    out = tmp_path / "out.ppm"
    command = [
        sys.executable,
        "-m",
        "convcli",
        "apply",
        str(source),
        "-k",
        "1",
        "-o",
        str(out),
        "-q",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == source.read_bytes()


def _plain(magic: str, values: np.ndarray, maxval: int) -> bytes:
    """Netpbm's plain (ASCII) format, with a comment and ragged lines as it allows."""
    numbers = " ".join(str(v) for v in values.ravel())
    height, width = values.shape[:2]
    return f"{magic}\n# plain\n{width} {height}\n{maxval}\n{numbers}\n".encode()


@pytest.mark.parametrize("maxval", [65535, 1023, 1000, 256])
@pytest.mark.parametrize(("magic", "shape"), [("P2", (5, 7)), ("P3", (5, 7, 3))])
def test_plain_pgm_ppm_past_255_are_read_exactly_at_16_bits(tmp_path, magic, shape, maxval):
    # Pillow reads a P3 with maxval 1023 as 8-bit RGB, and scales P2's by 65535/maxval.
    values = _values(shape, maxval, seed=3)
    values.ravel()[:2] = (0, maxval)
    path = tmp_path / f"in.{'pgm' if magic == 'P2' else 'ppm'}"
    path.write_bytes(_plain(magic, values, maxval))
    image = read_image(str(path))
    planes = values[..., None] if values.ndim == 2 else values
    expected = (planes.astype(np.float64) / maxval).transpose(2, 0, 1)[None]
    assert image.depth == 16 and image.format == "PPM"
    np.testing.assert_array_equal(image.pixels, expected.astype(np.float32))


def test_binary_pgm_with_an_odd_maxval_is_scaled_by_it_exactly(tmp_path):
    values = np.array([[0, 500, 1000]], np.uint16)  # Pillow gave 500 as 32768/65535
    path = tmp_path / "g.pgm"
    path.write_bytes(b"P5\n3 1\n1000\n" + values.astype(">u2").tobytes())
    image = read_image(str(path))
    assert image.pixels.ravel().tolist() == [0.0, 0.5, 1.0] and image.depth == 16


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"P2\n2 2\n1000\n1 2 3\n", "the image data ends early"),
        (b"P2\n2 1\n1000\n1 1001\n", "1001, above its maxval 1000"),
        (b"P3\n1 1\n1000\n1 2 x\n", "not a number"),
        (b"P2\n1 1\n70000\n1\n", "maxval 70000"),
    ],
)
def test_bad_plain_pnm_is_one_image_error(tmp_path, content, needle):
    path = tmp_path / "bad.pgm"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=needle):
        read_image(str(path))
