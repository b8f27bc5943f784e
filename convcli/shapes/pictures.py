"""Writing convolution pictures: the format from the extension (``.svg`` one static
picture; ``.gif``, ``.png``, ``.apng`` an animation), the file written atomically and
never over an input or a kernel file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from convcli.errors import ParameterError
from convcli.images.output_paths import check_output_directory, check_output_path
from convcli.images.outputs import atomic_output
from convcli.shapes.diagram import Diagram

DIAGRAM_FORMATS = {".svg": "SVG", ".gif": "GIF", ".png": "PNG", ".apng": "PNG"}


def diagram_format(path: str) -> str:
    """``SVG``, ``GIF`` or ``PNG`` for a picture's file name; others are usage errors.

    Examples
    --------
    >>> diagram_format("conv.svg"), diagram_format("conv.GIF"), diagram_format("conv.apng")
    ('SVG', 'GIF', 'PNG')
    """
    if path == "-":
        raise ParameterError(
            "--diagram -: standard output carries the shape text; give a file name ending in "
            ".svg, .gif, .png or .apng"
        )
    suffix = Path(path).suffix.lower()
    if suffix not in DIAGRAM_FORMATS:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise ParameterError(
            f"--diagram {path!r} has {shown}; use .svg (a picture), or .gif, .png or .apng "
            f"(an animation, one frame per output position)"
        )
    return DIAGRAM_FORMATS[suffix]


def check_diagram_path(path: str, *, inputs: Iterable[str] = (), kernels: Iterable[str] = ()):
    """Every check a picture's path allows before drawing: format, never an input or a
    kernel file, a writable directory."""
    diagram_format(path)
    check_output_path(path, list(inputs), what="--diagram", kernels=list(kernels))
    check_output_directory(path)


def write_diagram(d: Diagram, path: str) -> int:
    """Draw ``d`` into ``path``: SVG text (frame 0), or an animation painted by Pillow.
    Returns the frames drawn (an animation may hold fewer than ``d.frames``: see
    :func:`convcli.shapes.raster.frame_limit`)."""
    fmt = diagram_format(path)
    if fmt == "SVG":
        from convcli.shapes.svg import render_svg

        data, frames = render_svg(d).encode(), 1
    else:
        from convcli.shapes.raster import encode

        data, frames = encode(d, fmt)
    with atomic_output(path) as stream:
        stream.write(data)
    return frames
