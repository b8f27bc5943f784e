"""report.py: the stderr line and the JSON Lines record."""

from __future__ import annotations

import json

from convcli.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.report import ImageReport, json_record, text_line

FIELDS = [
    "input",
    "output",
    "input_shape",
    "weight_shape",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_shape",
    "min",
    "max",
    "clipped_low",
    "clipped_high",
    "seconds",
]


def _report(steps):
    return ImageReport(
        "in.png",
        "out.png",
        (1, 3, 10, 10),
        steps[-1][1].output_shape,
        steps,
        -0.5,
        1.5,
        3,
        4,
        0.125,
    )


def test_json_record_fields_and_values():
    geo = conv2d_geometry((1, 3, 10, 10), (3, 1, 3, 3), stride=2, padding=(0, 1, 0, 1), groups=3)
    record = json.loads(json_record(_report([((3, 1, 3, 3), geo)])))
    assert list(record)[: len(FIELDS)] == FIELDS
    assert record["padding"] == [0, 1, 0, 1] and record["stride"] == [2, 2]
    assert record["output_shape"] == [1, 3, 5, 5] and record["clipped_high"] == 4


def test_text_line_with_two_steps_names_both():
    a = conv2d_geometry((1, 3, 10, 10), (3, 1, 3, 3), padding="same", groups=3)
    b = conv_transpose2d_geometry((1, 3, 10, 10), (3, 1, 4, 4), stride=2, padding="same", groups=3)
    line = text_line(_report([((3, 1, 3, 3), a), ((3, 1, 4, 4), b)]))
    assert line.startswith("in.png -> out.png: (1,3,10,10) -> (1,3,20,20)")
    assert "transposed weight (3,1,4,4) stride (2,2)" in line and "clipped 0.58%" in line
