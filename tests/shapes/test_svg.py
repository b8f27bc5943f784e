"""svg.py: the SVG holds one element per cell with the classes the diagram gives it, and
the window of every frame where the diagram (checked against the reference) puts it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.conv.padding import PAD_MODES
from convcli.shapes.diagram import build_diagram, numbers_for
from convcli.shapes.svg import render_svg
from tests.reference import ref_source_index

SVG = "{http://www.w3.org/2000/svg}"


def cells(svg: str, cls: str) -> list[ET.Element]:
    """The rectangles whose class list holds ``cls``."""
    root = ET.fromstring(svg)
    return [e for e in root.iter(f"{SVG}rect") if cls in e.get("class", "").split()]


def positions(elements) -> list[tuple[int, int]]:
    return sorted((int(e.get("data-row")), int(e.get("data-col"))) for e in elements)


@pytest.mark.parametrize(
    "geo",
    [
        conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), stride=2, padding=1),
        conv2d_geometry((1, 1, 6, 4), (1, 1, 2, 3), dilation=(2, 1), padding=(0, 1, 2, 0)),
        conv2d_geometry((1, 1, 7, 7), (1, 1, 3, 3), stride=3),  # rows never read
        conv_transpose2d_geometry(
            (1, 1, 3, 2), (1, 1, 3, 3), stride=2, padding=1, output_padding=1
        ),
    ],
)
def test_every_frame_draws_the_diagrams_window_and_current_output(geo):
    d = build_diagram(geo)
    for frame in range(d.frames):
        svg = render_svg(d, frame, animated=True)
        window = cells(svg, "window")
        assert positions(window) == sorted((t.row, t.col) for t in d.window(frame))
        assert positions(cells(svg, "current")) == [d.position(frame)]
        assert len(cells(svg, "output")) == d.output_shape[0] * d.output_shape[1]
        gh, gw = d.grid_shape
        kinds = [d.kind(r, c) for r in range(gh) for c in range(gw)]
        for kind in ("input", "pad", "zero"):
            assert len(cells(svg, kind)) == kinds.count(kind)
        unread = [(r, c) for r in range(gh) for c in range(gw) if d.unread(r, c)]
        assert positions(cells(svg, "unread")) == unread


@pytest.mark.parametrize("mode", PAD_MODES)
def test_padded_cells_name_the_input_cell_they_copy(mode):
    geo = conv2d_geometry((1, 1, 3, 4), (1, 1, 3, 3), padding=(2, 1, 3, 2), padding_mode=mode)
    svg = render_svg(build_diagram(geo))
    rows = ref_source_index(3, 2, 1, mode)
    cols = ref_source_index(4, 3, 2, mode)
    for cell in cells(svg, "input") + cells(svg, "pad"):
        r, c = int(cell.get("data-row")), int(cell.get("data-col"))
        copies = rows[r] >= 0 and cols[c] >= 0
        expected = f"{rows[r]},{cols[c]}" if copies else None
        assert cell.get("data-source") == expected, (r, c)


def test_values_are_on_the_cells():
    geo = conv2d_geometry((1, 1, 4, 4), (1, 1, 3, 3), padding=1, padding_mode="replicate")
    x = np.arange(16.0).reshape(4, 4) / 4
    numbers = numbers_for(geo, x, np.ones((3, 3)))
    svg = render_svg(build_diagram(geo, numbers=numbers))
    padded = np.pad(x, 1, mode="edge")
    for cell in cells(svg, "input") + cells(svg, "pad"):
        r, c = int(cell.get("data-row")), int(cell.get("data-col"))
        assert float(cell.get("data-value")) == padded[r, c]
    for cell in cells(svg, "output"):
        r, c = int(cell.get("data-row")), int(cell.get("data-col"))
        assert float(cell.get("data-value")) == pytest.approx(padded[r : r + 3, c : c + 3].sum())
    root = ET.fromstring(svg)
    text = " ".join(t.text for t in root.iter(f"{SVG}text"))  # the sum wraps over lines
    assert "y[0,0] = 0*1 + 0*1 + 0.25*1 + 0*1 + 0*1 + 0.25*1 + 1*1 + 1*1 + 1.25*1 = 3.75" in text


def test_a_static_picture_shows_the_whole_output_and_the_formulas():
    d = build_diagram(conv2d_geometry((1, 1, 4, 4), (1, 1, 3, 3)))
    svg = render_svg(d)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "H_out = floor((4 + 0 + 0 - 1*(3-1) - 1) / 1) + 1 = 2" in texts
    fills = {e.get("fill") for e in cells(svg, "output") if "current" not in e.get("class")}
    assert fills == {"#b2e2d2"}  # no cell left empty, as an animation's first frame would
    assert root.find(f"{SVG}title").text.startswith("conv2d: input 4x4, kernel 3x3")
