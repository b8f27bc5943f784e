"""report.py: the stderr line and the JSON Lines record."""

from __future__ import annotations

import json

from convcli.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from convcli.jobs.report import ImageReport, json_record, text_line

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


def test_error_record_fields():
    from convcli.jobs.report import error_record

    assert json.loads(error_record("a.png", "o/a.png", "a.png: broken")) == {
        "input": "a.png",
        "output": "o/a.png",
        "error": "a.png: broken",
    }
    assert "output" not in json.loads(error_record("a.png", None, "x"))


def test_report_has_failed_inputs_and_per_image_shapes(tmp_path):
    from click.testing import CliRunner
    from PIL import Image as PILImage

    from convcli.cli.app import cli

    for name in ("a.png", "c.png"):  # same size: filtered as one batch of 2
        PILImage.new("RGB", (16, 12), (10, 20, 30)).save(tmp_path / name)
    (tmp_path / "b.png").write_text("not an image")
    (tmp_path / "out").mkdir()
    sources = [str(tmp_path / n) for n in ("a.png", "c.png", "b.png")]
    run_file = tmp_path / "run.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "apply",
            *sources,
            "-k",
            "box:3",
            "-k",
            "gaussian:3",
            "-o",
            f"{tmp_path}/out/",
            "--report",
            str(run_file),
        ],
    )
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in run_file.read_text().splitlines()]
    assert [r["input"] for r in records] == sources
    failed = records[2]
    assert set(failed) == {"input", "output", "error"}
    assert failed["output"] == f"{tmp_path}/out/b.png"
    assert f"Error: {failed['error']}" in result.output and "b.png" in failed["error"]
    for good in records[:2]:
        assert good["output_shape"] == [1, 3, 12, 16]
        assert [s["output_shape"] for s in good["steps"]] == [[1, 3, 12, 16]] * 2


def test_step_shapes_are_the_images_own_in_a_batch():
    geo = conv2d_geometry((2, 3, 10, 10), (3, 1, 3, 3), padding="same", groups=3)
    record = json.loads(json_record(_report([((3, 1, 3, 3), geo)])))  # one image of the two
    assert record["steps"][0]["output_shape"] == [1, 3, 10, 10]


def test_a_filter_banks_step_says_how_many_kernels_it_combined():
    geo = conv2d_geometry((1, 3, 10, 10), (3, 1, 3, 3), padding="same", groups=3)
    r = _report([((2, 3, 1, 3, 3), geo)])
    assert "weight (3,1,3,3) x2 combined stride (1,1)" in text_line(r)
    record = json.loads(json_record(r))
    assert record["weight_shape"] == [3, 1, 3, 3] and record["steps"][0]["bank"] == 2
    plain = json.loads(json_record(_report([((3, 1, 3, 3), geo)])))
    assert "bank" not in plain["steps"][0]
