"""Transparency flattened over a background colour (``--background``), for formats that
hold no alpha (JPEG, BMP, PNM) or whenever the user asks.

A pixel of colour ``c`` and alpha ``a`` becomes ``c*a + b*(1 - a)`` over background
``b``, on the stored (gamma-encoded) values in [0, 1], as ImageMagick's ``-flatten`` and
libvips' ``flatten`` compute it. A gray image is flattened over the background's luma,
``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, Pillow's ``convert("L")``), since it
stays gray.
"""

from __future__ import annotations

import numpy as np

from convcli.errors import ParameterError

Colour = tuple[float, float, float]
WHITE: Colour = (1.0, 1.0, 1.0)
_LUMA = (0.299, 0.587, 0.114)


def parse_colour(text: str) -> Colour:
    """A background colour from ``--background``: a CSS colour name (``white``, ``black``,
    ``navy``, ...), ``#rgb``, ``#rrggbb``, an opaque ``#rrggbbaa``, or ``rgb(r, g, b)``,
    as (r, g, b) in [0, 1].

    Examples
    --------
    >>> parse_colour("white"), parse_colour("#f00")
    ((1.0, 1.0, 1.0), (1.0, 0.0, 0.0))
    >>> parse_colour("#00000080")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    convcli.errors.ParameterError: --background '#00000080': a background is opaque; ...
    """
    from PIL import ImageColor

    try:
        values = ImageColor.getrgb(text.strip())
    except ValueError:
        raise ParameterError(
            f"--background {text!r} is not a colour; give a name (white, black, gray, navy, "
            f"...) or #rrggbb"
        ) from None
    if len(values) == 4 and values[3] != 255:
        raise ParameterError(
            f"--background {text!r}: a background is opaque; give #rrggbb (or #rrggbbff)"
        )
    return tuple(v / 255 for v in values[:3])  # type: ignore[return-value]


def colour_text(colour: Colour) -> str:
    """``#rrggbb`` for a colour parsed by :func:`parse_colour`.

    Examples
    --------
    >>> colour_text((1.0, 0.5, 0.0))
    '#ff8000'
    """
    return "#" + "".join(f"{round(v * 255):02x}" for v in colour)


def background_values(colour: Colour, colours: int) -> np.ndarray:
    """The background per colour channel: RGB for 3, the luma for 1 (see the module).

    Examples
    --------
    >>> [round(float(v), 3) for v in background_values((1.0, 0.0, 0.0), 1)]
    [0.299]
    """
    if colours == 1:
        return np.array([sum(w * v for w, v in zip(_LUMA, colour, strict=True))], np.float32)
    return np.array(colour, np.float32)


def flatten(pixels: np.ndarray, colour: Colour, *, top: float = 1.0) -> np.ndarray:
    """(N, C, H, W) pixels with alpha last, colour and alpha in [0, ``top``] -> the
    (N, C-1, H, W) colour flattened over ``colour``; colour values outside [0, ``top``]
    (raw ``.npy`` floats) are kept as they are, alpha is clipped to [0, 1] of ``top``.

    Examples
    --------
    >>> x = np.array([[[[0.2]], [[0.5]]]], np.float32)  # gray 0.2 at alpha 0.5
    >>> flatten(x, (1.0, 1.0, 1.0)).ravel().tolist()
    [0.6000000238418579]
    """
    colours = pixels.shape[1] - 1
    alpha = np.clip(pixels[:, -1:], 0, top) / np.float32(top)
    back = (background_values(colour, colours) * np.float32(top))[:, None, None]
    out = pixels[:, :-1] - back
    out *= alpha
    out += back
    return out
