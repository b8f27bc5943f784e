"""metadata.py: ICC profiles and EXIF from input to output, orientation reset; and the
readers and writers that carry them (Pillow, the fast codecs, our PNG, tifffile)."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import ExifTags, ImageCms
from PIL import Image as PILImage

from convcli.images import fast_codecs, metadata
from convcli.images.metadata import Metadata, for_output, upright_exif
from convcli.images.reading import read_image
from convcli.images.writing import write_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # an ICC v4 mluc


def icc_v2(description: str, space: bytes = b"RGB ") -> bytes:
    """A minimal ICC v2 profile as libpng accepts one (a length that is a multiple of 4,
    D50 illuminant): header, a tag table with 'desc' (textDescriptionType)."""
    text = description.encode("latin-1") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(79)
    desc += bytes(-len(desc) % 4)
    header = bytearray(128)
    header[8:12] = b"\x02\x10\x00\x00"
    header[12:16], header[16:20], header[20:24], header[36:40] = b"mntr", space, b"XYZ ", b"acsp"
    header[68:80] = struct.pack(">3i", 0xF6D6, 0x10000, 0xD32D)  # D50
    table = struct.pack(">I4sII", 1, b"desc", 128 + 16, len(desc))
    profile = bytes(header) + table + desc
    return struct.pack(">I", len(profile)) + profile[4:]


P3 = icc_v2("Display P3")
GRAY = icc_v2("Generic Gray Gamma 2.2", b"GRAY")


def camera_exif(orientation: int = 6, width: int = 640, height: int = 480) -> bytes:
    """EXIF as a camera writes it: IFD0 (Make, Orientation), an Exif IFD with the pixel
    size and a date; its TIFF structure (Pillow's tobytes gives the JPEG header first)."""
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make] = "Convcli Camera"
    exif[ExifTags.Base.Orientation] = orientation
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.ExifImageWidth] = width
    ifd[ExifTags.Base.ExifImageHeight] = height
    ifd[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    return metadata.exif_payload(exif.tobytes())


def read_exif(payload: bytes) -> tuple[dict, dict]:
    exif = PILImage.Exif()
    exif.load(metadata.EXIF_HEADER + payload)
    return dict(exif), dict(exif.get_ifd(ExifTags.IFD.Exif))


def test_profile_descriptions_v2_and_v4():
    assert metadata.profile_description(P3) == "Display P3"
    assert metadata.profile_description(SRGB) == "sRGB built-in"
    assert metadata.profile_description(b"too short") is None
    assert metadata.is_srgb(SRGB) and not metadata.is_srgb(P3)
    assert (metadata.profile_space(P3), metadata.profile_space(GRAY)) == ("RGB", "GRAY")
    assert metadata.png_profile_name(P3) == b"Display P3"


def test_orientation_and_size_are_patched_in_place_nothing_else():
    exif = camera_exif(orientation=6, width=640, height=480)
    patched = upright_exif(exif, width=30, height=20)
    assert len(patched) == len(exif)
    ifd0, sub = read_exif(patched)
    assert ifd0[ExifTags.Base.Orientation] == 1 and ifd0[ExifTags.Base.Make] == "Convcli Camera"
    assert sub[ExifTags.Base.ExifImageWidth] == 30 and sub[ExifTags.Base.ExifImageHeight] == 20
    assert sub[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
    changed = [i for i, (a, b) in enumerate(zip(exif, patched, strict=True)) if a != b]
    assert len(changed) <= 6  # the orientation's byte, and the sizes' low bytes


def test_big_endian_exif_is_patched_too():
    # Motorola order, as many cameras write: IFD0 with Orientation 8 (SHORT) only.
    exif = struct.pack(">2sHI", b"MM", 42, 8) + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, 8, 0)
    exif += bytes(4)
    ifd0, _ = read_exif(upright_exif(exif, width=1, height=1))
    assert ifd0[ExifTags.Base.Orientation] == 1


@pytest.mark.parametrize(
    "broken",
    [b"II*\x00\xff\xff\x00\x00", b"XX*\x00\x08\x00\x00\x00", b"II*\x00\x08\x00\x00\x00\x05\x00"],
)
def test_exif_that_cannot_be_followed_is_not_written(broken):
    with pytest.raises((ValueError, struct.error)):
        upright_exif(broken, width=1, height=1)
    kept, notes = for_output(Metadata(exif=broken), "o.jpg", "JPEG", colours=3, width=1, height=1)
    assert kept.exif is None and notes == ["o.jpg: the input's EXIF cannot be read; not written"]


@pytest.mark.parametrize(
    ("fmt", "colours", "profile", "kept", "warned"),
    [
        ("PNG", 3, P3, True, False),
        ("TIFF", 1, GRAY, True, False),
        ("JPEG", 1, P3, False, False),  # a gray result of an RGB photo: none, as libvips
        ("WEBP", 3, GRAY, False, False),
        ("PNG", 0, P3, False, False),  # feature maps: no colours at all
        ("BMP", 3, P3, False, True),  # cannot hold one: said, since colours change
        ("PPM", 3, SRGB, False, False),  # ... unless it is sRGB, what viewers assume
        ("NPY", 3, P3, False, False),  # raw arrays
    ],
)
def test_which_profile_goes_where(fmt, colours, profile, kept, warned):
    out, notes = for_output(Metadata(profile), "o", fmt, colours=colours, width=2, height=2)
    assert (out.icc_profile == profile) if kept else out.icc_profile is None
    assert bool(notes) == warned
    if warned:
        assert "(Display P3)" in notes[0] and "write PNG, JPEG, WebP or TIFF" in notes[0]


# Through the readers and writers -------------------------------------------------------------

RGB = np.random.default_rng(0).integers(0, 256, (12, 17, 3), np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("fast", [True, False])
def test_pillows_formats_give_profile_and_exif(tmp_path, monkeypatch, fmt, fast):
    """JPEG and PNG through the fast decoders too: their header's metadata is kept."""
    path = tmp_path / f"in.{fmt.lower()}"
    exif = camera_exif(orientation=1)
    PILImage.fromarray(RGB).save(path, format=fmt, icc_profile=P3, exif=b"Exif\0\0" + exif)
    if not fast:
        monkeypatch.setattr(fast_codecs, "_codecs", lambda: None)
    img = read_image(str(path))
    assert img.metadata.icc_profile == P3 and img.metadata.exif == exif


def test_a_png_with_a_profile_alone_is_decoded_fast_and_keeps_it(tmp_path):
    pytest.importorskip("imagecodecs")
    path = tmp_path / "p3.png"
    PILImage.fromarray(RGB).save(path, icc_profile=P3)
    data = path.read_bytes()
    with PILImage.open(io.BytesIO(data)) as im:
        assert fast_codecs.decode(data, im) is not None  # iCCP does not send it to Pillow
    assert read_image(str(path)).metadata == Metadata(P3, None)


def test_sixteen_bit_png_and_tiff_give_their_profiles(tmp_path):
    import tifffile

    values = np.random.default_rng(1).integers(0, 65536, (6, 7, 3), np.uint16)
    png_path = tmp_path / "deep.png"
    write_image(values.transpose(2, 0, 1) / 65535, str(png_path), depth=16,
                metadata=Metadata(P3, camera_exif(1)))  # fmt: skip
    img = read_image(str(png_path))
    assert img.depth == 16 and img.metadata.icc_profile == P3
    assert read_exif(img.metadata.exif)[0][ExifTags.Base.Make] == "Convcli Camera"
    tiff_path = tmp_path / "in.tif"
    tifffile.imwrite(tiff_path, values, photometric="rgb", iccprofile=P3)
    assert read_image(str(tiff_path)).metadata.icc_profile == P3


def test_imagemagicks_exif_in_a_png_text_chunk_is_read(tmp_path):
    from PIL import PngImagePlugin

    exif = camera_exif(orientation=1)
    hexed = (metadata.EXIF_HEADER + exif).hex()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(exif) + 6:8d}\n{hexed}\n", zip=True)
    path = tmp_path / "im.png"
    PILImage.fromarray(RGB).save(path, pnginfo=info)
    assert read_image(str(path)).metadata.exif == exif


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif"])
@pytest.mark.parametrize("depth", [8, 16])
def test_written_profile_and_exif_read_back(tmp_path, fmt, depth):
    if depth == 16 and fmt in ("jpg", "webp"):
        return
    path = tmp_path / f"out.{fmt}"
    pixels = RGB.transpose(2, 0, 1).astype(np.float32) / 255
    write_image(pixels, str(path), depth=depth, metadata=Metadata(P3, camera_exif(6)))
    with PILImage.open(path) as im:
        assert im.info.get("icc_profile") == P3
        exif = im.getexif()
        if fmt == "tif":  # tifffile writes no EXIF directory
            assert ExifTags.Base.Make not in exif
        else:
            assert exif[ExifTags.Base.Orientation] == 1
            assert exif[ExifTags.Base.Make] == "Convcli Camera"
            assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExifImageWidth] == 17


def test_fast_jpeg_with_metadata_is_pillows_byte_for_byte(tmp_path, monkeypatch):
    """The profile (over several APP2 markers when long) and EXIF where Pillow puts them."""
    pytest.importorskip("imagecodecs")
    long_profile = P3 + bytes(150_000)  # three markers
    kept = Metadata(long_profile, camera_exif(1))
    assert fast_codecs.encode_jpeg(RGB, quality=90, metadata=kept) is not None
    pixels = RGB.transpose(2, 0, 1).astype(np.float32) / 255
    fast, slow = tmp_path / "fast.jpg", tmp_path / "slow.jpg"
    write_image(pixels, str(fast), quality=90, metadata=kept)
    monkeypatch.setattr(fast_codecs, "_codecs", lambda: None)
    write_image(pixels, str(slow), quality=90, metadata=kept)
    assert fast.read_bytes() == slow.read_bytes()
    with PILImage.open(io.BytesIO(fast.read_bytes())) as im:
        assert im.info["icc_profile"] == long_profile


def test_png_chunks_in_order_and_named(tmp_path):
    out = io.BytesIO()
    from convcli.images import png

    png.write_png(RGB, out, icc_profile=P3, exif=camera_exif(1))
    data = out.getvalue()
    kinds, position = [], 8
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        kinds.append(kind)
        if kind == b"iCCP":
            assert data[position + 8 :].startswith(b"Display P3\0\0")
        position += 12 + length
    assert kinds[:3] == [b"IHDR", b"iCCP", b"eXIf"] and kinds[3] == b"IDAT"
