"""A convolution picture as an animation: one frame per output position, painted with
Pillow (imported when a picture is drawn, never by ``import convcli``), saved as GIF or
(animated) PNG.

All frames share one small palette, so a GIF of a 7x7 -> 3x3 convolution stays a few
tens of kilobytes; frames are painted one at a time.
"""

from __future__ import annotations

import io
from dataclasses import replace
from functools import cache

from convcli.shapes.diagram import Diagram
from convcli.shapes.layout import COLORS, Layout, Line, Picture, Rect, Text

PALETTE_COLORS = 64
FRAME_PIXELS = 60_000_000  # all frames together: Pillow keeps them until it writes


def frame_durations(count: int) -> list[int]:
    """Milliseconds per frame: slower for a few frames, and the last one held.

    Examples
    --------
    >>> frame_durations(3)
    [800, 800, 2400]
    """
    each = 800 if count <= 25 else 400 if count <= 100 else 200
    return [each] * (count - 1) + [max(3 * each, 2000)]


def frame_limit(d: Diagram) -> int:
    """How many frames of ``d`` to draw: at most ``d.frames``, and no more than
    ``FRAME_PIXELS`` pixels in all (Pillow holds every frame until the file is written)."""
    pic = Layout(d, animated=d.frames > 1).picture(0)
    return max(1, min(d.frames, FRAME_PIXELS // (pic.width * pic.height)))


def encode(d: Diagram, fmt: str) -> tuple[bytes, int]:
    """The animation as ``GIF`` or ``PNG`` bytes (an APNG when there are several frames),
    and how many frames it holds.

    Frames past :func:`frame_limit` are left out (the picture's notes say so). They are
    painted one at a time, quantized to one palette taken from the first and last
    frames (which between them hold every colour): a single colour table, and small.
    """
    from convcli.images.pillow import image_module

    pil = image_module()
    d = replace(d, frames=frame_limit(d))
    places = Layout(d, animated=d.frames > 1)

    def frame(k: int):
        return paint(places.picture(k), pil)

    first, last = frame(0), frame(d.frames - 1)
    montage = pil.new("RGB", (first.width, first.height * 2), COLORS["background"])
    montage.paste(first, (0, 0))
    montage.paste(last, (0, first.height))
    palette = montage.quantize(
        colors=PALETTE_COLORS, method=pil.Quantize.MEDIANCUT, dither=pil.Dither.NONE
    )

    def quantized(image):
        return image.quantize(palette=palette, dither=pil.Dither.NONE)

    buffer = io.BytesIO()
    options: dict = {"format": fmt}
    if d.frames > 1:
        rest = (frame(k) for k in range(1, d.frames - 1))
        options.update(
            save_all=True,
            # A list: Pillow's PNG writer reads append_images twice.
            append_images=[*map(quantized, rest), quantized(last)],
            duration=frame_durations(d.frames),
            loop=0,
        )
    if fmt == "GIF":
        options["optimize"] = True
    quantized(first).save(buffer, **options)
    return buffer.getvalue(), d.frames


def paint(pic: Picture, pil):
    """One :class:`~convcli.shapes.layout.Picture` as an RGB image."""
    from PIL import ImageDraw

    image = pil.new("RGB", (pic.width, pic.height), COLORS["background"])
    draw = ImageDraw.Draw(image)
    for item in pic.items:
        if isinstance(item, Rect):
            _rect(draw, item)
        elif isinstance(item, Line):
            xy = [(item.x1, item.y1), (item.x2, item.y2)]
            draw.line(xy, fill=item.color, width=round(item.width))
        elif isinstance(item, Text):
            _text(draw, item)
    return image


def _rect(draw, r: Rect) -> None:
    box = [r.x, r.y, r.x + r.w, r.y + r.h]
    if r.fill != "none":
        draw.rectangle(box, fill=r.fill)
    if not r.stroke:
        return
    width = max(1, round(r.width))
    if not r.dashed:
        draw.rectangle(box, outline=r.stroke, width=width)
        return
    x0, y0, x1, y1 = box
    for a, b in (
        ((x0, y0), (x1, y0)),
        ((x1, y0), (x1, y1)),
        ((x0, y1), (x1, y1)),
        ((x0, y0), (x0, y1)),
    ):
        _dashed(draw, a, b, r.stroke, width)


def _dashed(draw, a, b, color: str, width: int, dash: float = 3, gap: float = 2) -> None:
    (xa, ya), (xb, yb) = a, b
    length = abs(xb - xa) + abs(yb - ya)
    t = 0.0
    while t < length:
        end = min(t + dash, length)
        p = (xa + (xb - xa) * t / length, ya + (yb - ya) * t / length)
        q = (xa + (xb - xa) * end / length, ya + (yb - ya) * end / length)
        draw.line([p, q], fill=color, width=width)
        t = end + gap


@cache
def font(size: int):
    """Pillow's own font at ``size`` pixels (FreeType since Pillow 10.1), else its bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _text(draw, t: Text) -> None:
    f = font(round(t.size))
    left, top, right, bottom = draw.textbbox((0, 0), t.text, font=f)
    x = t.x - {"start": left, "middle": (left + right) / 2, "end": right}[t.anchor]
    y = t.y - (top + bottom) / 2
    draw.text((x, y), t.text, fill=t.color, font=f)
    if t.bold:
        draw.text((x + 1, y), t.text, fill=t.color, font=f)
