"""Issue 14, items 5 and 9, through the real command: transparency flattened over a
background for formats without alpha (against ImageMagick's ``-flatten`` and libvips'
``flatten``), and the ICC profile and EXIF carried from input to output (read back by
Pillow and by ``vipsheader``), orientation reset, ``--strip``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import ExifTags
from PIL import Image as PILImage

from convcli.cli.app import cli
from tests.images.test_metadata import GRAY, P3, camera_exif
from tests.paths import FILTERS

IMAGEMAGICK = "/usr/bin/convert"  # /usr/local/bin/convert may be a stand-in


def run(*args) -> object:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def pixels_of(path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im).astype(np.int16)


def needs_imagemagick() -> None:
    if not os.access(IMAGEMAGICK, os.X_OK):
        pytest.skip("ImageMagick (/usr/bin/convert) is not installed")


def needs_vips() -> None:
    if shutil.which("vips") is None:
        pytest.skip("libvips' command line (vips) is not installed")


@pytest.fixture
def rgba(tmp_path):
    """A 20x30 RGBA PNG with every alpha from 0 to 255 (a transparent top band)."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (20, 30, 4), np.uint8)
    pixels[:4, :, 3] = 0
    path = tmp_path / "rgba.png"
    PILImage.fromarray(pixels).save(path)
    return path, pixels


def over(pixels: np.ndarray, colour) -> np.ndarray:
    """The definition: colour * alpha + background * (1 - alpha), rounded."""
    alpha = pixels[..., -1:] / 255
    return np.rint(pixels[..., :-1] * alpha + np.asarray(colour) * (1 - alpha))


# Item 5: --background -----------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["ppm", "bmp", "jpg"])
def test_alpha_into_a_format_without_it_is_flattened_over_white(tmp_path, rgba, ext):
    path, pixels = rgba
    out = tmp_path / f"out.{ext}"
    result = run("apply", path, "-k", "identity", "-o", out, "--report", tmp_path / "r.jsonl")
    assert result.exit_code == 0, result.output
    assert f"Warning: {out}: " in result.output
    assert "has no alpha channel; flattened over white (--background to choose)" in result.output
    expected = over(pixels, (255, 255, 255)).astype(np.uint8)
    if ext == "jpg":  # the JPEG of those pixels (encoded as Pillow does, quality 95)
        PILImage.fromarray(expected).save(tmp_path / "expected.jpg", quality=95)
        expected = pixels_of(tmp_path / "expected.jpg")
    assert np.array_equal(pixels_of(out), expected)
    assert json.loads((tmp_path / "r.jsonl").read_text())["background"] == "#ffffff"


@pytest.mark.parametrize(
    ("colour", "im_colour"), [(None, "white"), ("red", "red"), ("#3366cc", "#3366cc")]
)
def test_flattening_is_imagemagicks(tmp_path, rgba, colour, im_colour):
    """``convert in.png -background C -flatten out.ppm``: the same pixels, after a blur too
    (flattened after filtering, as the format wants it)."""
    needs_imagemagick()
    path, _ = rgba
    for kernel, name in (("identity", "id"), ("box:3", "blur")):
        source = path
        if kernel != "identity":  # ImageMagick flattens convcli's RGBA result
            source = tmp_path / "blurred.png"
            assert run("apply", path, "-k", kernel, "-o", source, "-q").exit_code == 0
        expected = tmp_path / f"im-{name}.ppm"
        subprocess.run(
            [IMAGEMAGICK, source, "-background", im_colour, "-flatten", expected], check=True
        )
        out = tmp_path / f"{name}.ppm"
        options = ["--background", colour] if colour else []
        assert run("apply", path, "-k", kernel, *options, "-o", out, "-q").exit_code == 0
        assert np.abs(pixels_of(out) - pixels_of(expected)).max() <= 1


def test_flattening_is_libvips_flatten(tmp_path, rgba):
    needs_vips()
    path, _ = rgba
    expected = tmp_path / "vips.ppm"
    subprocess.run(["vips", "flatten", path, expected, "--background", "0 128 255"], check=True)
    out = tmp_path / "out.ppm"
    assert run("apply", path, "-k", "identity", "--background", "#0080ff", "-o", out).exit_code == 0
    assert np.abs(pixels_of(out) - pixels_of(expected)).max() <= 1


def test_gray_and_alpha_flatten_over_the_backgrounds_luma(tmp_path):
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, (9, 11, 2), np.uint8)
    path = tmp_path / "la.png"
    PILImage.fromarray(pixels, "LA").save(path)
    for colour, gray in (("white", 255), ("red", 0.299 * 255), ("#4080c0", None)):
        if gray is None:
            gray = 0.299 * 0x40 + 0.587 * 0x80 + 0.114 * 0xC0
        out = tmp_path / "out.pgm"
        result = run("apply", path, "-k", "identity", "--background", colour, "-o", out)
        assert result.exit_code == 0 and "Warning" not in result.output, result.output
        assert np.abs(pixels_of(out) - over(pixels, (gray,))[..., 0]).max() <= 1
    if os.access(IMAGEMAGICK, os.X_OK):  # over white, ImageMagick agrees
        expected = tmp_path / "im.pgm"
        subprocess.run(
            [IMAGEMAGICK, path, "-background", "white", "-flatten", expected], check=True
        )
        assert run("apply", path, "-k", "identity", "-o", tmp_path / "w.pgm").exit_code == 0
        assert np.abs(pixels_of(tmp_path / "w.pgm") - pixels_of(expected)).max() <= 1


def test_a_background_flattens_formats_with_alpha_too_and_npy(tmp_path, rgba):
    path, pixels = rgba
    kept = tmp_path / "kept.png"
    assert run("apply", path, "-k", "identity", "-o", kept).exit_code == 0
    assert pixels_of(kept).shape == (20, 30, 4)  # no --background: PNG keeps alpha
    flat = tmp_path / "flat.png"
    assert run("apply", path, "-k", "identity", "--background", "black", "-o", flat).exit_code == 0
    assert np.array_equal(pixels_of(flat), over(pixels, (0, 0, 0)))
    raw = tmp_path / "raw.npy"
    assert run("apply", path, "-k", "identity", "-o", raw).exit_code == 0
    assert np.load(raw).shape == (4, 20, 30)  # .npy keeps alpha
    raw_flat = tmp_path / "flat.npy"
    result = run("apply", path, "-k", "identity", "--background", "black", "-o", raw_flat)
    assert result.exit_code == 0
    np.testing.assert_allclose(np.load(raw_flat).transpose(1, 2, 0) * 255, over(pixels, (0,) * 3),
                               atol=0.5 + 1e-4)  # fmt: skip


def test_frames_into_jpeg_are_flattened_with_one_warning(tmp_path):
    frames = [PILImage.new("RGBA", (6, 5), (200, 10, 10, a)) for a in (0, 128, 255)]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])  # an APNG of 3 frames
    target = tmp_path / "f{frame}.jpg"
    result = run("apply", path, "-k", "identity", "-o", target)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning")]
    assert warnings == [
        f"Warning: {target}: JPEG has no alpha channel; flattened over white (--background to "
        f"choose)"
    ]
    firsts = [pixels_of(tmp_path / f"f{n}.jpg")[2, 2] for n in range(3)]
    np.testing.assert_allclose(firsts, [[255] * 3, [227, 132, 132], [200, 10, 10]], atol=3)


def test_a_background_that_is_no_colour_is_refused_before_reading(tmp_path):
    result = run("apply", tmp_path / "missing.png", "-k", "box:3", "--background", "#ff000080",
                 "-o", tmp_path / "o.jpg")  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --background '#ff000080': a background is opaque; give #rrggbb (or #rrggbbff)"
    ]


# Item 9: ICC profiles and EXIF ---------------------------------------------------------------


@pytest.fixture
def photo(tmp_path):
    """A 'camera' JPEG: 12x8 as stored, EXIF orientation 6 (turn clockwise to view), a
    Display P3 profile."""
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 256, (8, 12, 3), np.uint8)
    path = tmp_path / "camera.jpg"
    exif = b"Exif\0\0" + camera_exif(orientation=6, width=12, height=8)
    PILImage.fromarray(stored).save(path, quality=95, icc_profile=P3, exif=exif)
    return path


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif"])
def test_the_profile_and_exif_survive_orientation_reset(tmp_path, photo, ext):
    out = tmp_path / f"out.{ext}"
    assert run("apply", photo, "-k", "box:3", "-o", out).exit_code == 0
    with PILImage.open(out) as im:
        assert im.size == (8, 12)  # turned upright when read
        assert im.info["icc_profile"] == P3
        exif = im.getexif()
        if ext != "tif":
            assert exif[ExifTags.Base.Orientation] == 1  # already turned: not again
            assert exif[ExifTags.Base.Make] == "Convcli Camera"
            sizes = exif.get_ifd(ExifTags.IFD.Exif)
            assert (sizes[ExifTags.Base.ExifImageWidth], sizes[ExifTags.Base.ExifImageHeight]) == (
                8,
                12,
            )


def test_vips_sees_the_profile_and_the_orientation(tmp_path, photo):
    needs_vips()
    out = tmp_path / "out.png"
    assert run("upsample", photo, "-o", out).exit_code == 0
    header = subprocess.run(["vipsheader", "-a", out], capture_output=True, text=True, check=True)
    fields = dict(line.split(": ", 1) for line in header.stdout.splitlines() if ": " in line)
    assert fields["icc-profile-data"].startswith(f"{len(P3)} bytes")
    assert fields["orientation"] == "1" and fields["width"] == "16"
    assert fields["exif-ifd0-Make"].startswith("Convcli Camera")
    assert fields["exif-ifd2-PixelXDimension"].startswith("16 ")


def test_strip_writes_no_metadata(tmp_path, photo):
    out = tmp_path / "out.jpg"
    assert run("apply", photo, "-k", "box:3", "--strip", "-o", out).exit_code == 0
    with PILImage.open(out) as im:
        assert "icc_profile" not in im.info and "exif" not in im.info
        assert im.size == (8, 12)


def test_a_gray_result_of_a_colour_photo_gets_no_rgb_profile(tmp_path, photo):
    out = tmp_path / "luma.png"
    result = run("apply", photo, "-k", FILTERS / "luma.toml", "-o", out)
    assert result.exit_code == 0 and "Warning" not in result.output, result.output
    with PILImage.open(out) as im:
        assert im.mode == "L" and "icc_profile" not in im.info
        assert im.getexif()[ExifTags.Base.Make] == "Convcli Camera"


def test_gray_profiles_stay_with_gray_images(tmp_path):
    path = tmp_path / "gray.png"
    PILImage.new("L", (5, 5), 90).save(path, icc_profile=GRAY)
    for ext in ("png", "tif", "jpg"):
        out = tmp_path / f"out.{ext}"
        assert run("apply", path, "-k", "box:3", "-o", out).exit_code == 0
        with PILImage.open(out) as im:
            assert im.info["icc_profile"] == GRAY


def test_a_format_without_profiles_says_the_colours_change(tmp_path, photo):
    out = tmp_path / "out.ppm"
    result = run("apply", photo, "-k", "box:3", "-o", out)
    assert result.exit_code == 0
    assert f"Warning: {out}: PPM cannot hold the input's ICC profile (Display P3)" in result.output
