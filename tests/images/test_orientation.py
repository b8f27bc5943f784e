"""EXIF orientation: every one of the eight turns as Pillow's ImageOps.exif_transpose."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from convcli.images.orientation import exif_orientation, upright


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_turns_as_pillow_does(orientation):
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = PILImage.fromarray(values)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(upright(values[..., None], orientation)[..., 0], expected)


def test_orientation_from_exif_bytes_and_a_malformed_one():
    exif = PILImage.Exif()
    exif[0x0112] = 6
    notes: list[str] = []
    assert exif_orientation(exif.tobytes(), "a.png", notes) == 6 and notes == []
    assert exif_orientation(None, "a.png", notes) == 1 and notes == []
    assert exif_orientation(b"MM\x00*\x00\x00\x00\x08\xff\xff", "a.png", notes) == 1
    assert len(notes) == 1 and "EXIF orientation could not be read" in notes[0]
