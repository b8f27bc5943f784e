"""EXIF and TIFF orientation: pixels turned upright as they are displayed.

A camera stores its pixels as the sensor read them and says in a tag how to turn them;
every reader of convcli (Pillow's frames, 16-bit PNG, TIFF whole or by region) turns
them by the same table, so that a region and the whole image agree.
"""

from __future__ import annotations

import numpy as np

from convcli.images import pillow

# EXIF and TIFF orientation -> the turn that makes (H, W, C) pixels upright, as Pillow's
# ImageOps.exif_transpose does (2 mirrored, 3 upside down, 6 turned clockwise to display).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: a.swapaxes(0, 1)[::-1],
}


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) pixels as displayed, by their orientation (1 to 8); a view, no copy."""
    return _UPRIGHT.get(orientation, lambda a: a)(array)


def exif_orientation(exif: bytes | None, source: str, notes: list[str]) -> int:
    """The orientation in EXIF bytes (1 when absent); a malformed EXIF is a warning."""
    if not exif:
        return 1
    try:
        tags = pillow.image_module().Exif()
        tags.load(exif)
        return int(tags.get(0x0112, 1))
    except Exception as err:  # Pillow raises many kinds on malformed EXIF
        notes.append(f"{source}: EXIF orientation could not be read ({err}); loaded as stored")
        return 1


def oriented(im, source: str):
    """The frame turned upright by its EXIF orientation; a bad EXIF is a warning."""
    from PIL import ImageOps

    try:
        if im.getexif().get(0x0112, 1) == 1:
            return im, []  # upright as stored (exif_transpose would copy it anyway)
        return ImageOps.exif_transpose(im), []
    except Exception as err:  # Pillow raises many kinds on malformed EXIF
        return im, [f"{source}: EXIF orientation could not be read ({err}); loaded as stored"]
