"""report.py: the stderr line and the JSON Lines record."""

from __future__ import annotations

import json

import numpy as np

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


# What reproduces a run (issue 14, item 6) ---------------------------------------------------


def _run_report(tmp_path, *args: str) -> dict:
    from click.testing import CliRunner

    from convcli.cli.app import cli

    report = tmp_path / "run.jsonl"
    result = CliRunner().invoke(cli, [*args, "--report", str(report), "-q"])
    assert result.exit_code == 0, result.output
    (line,) = report.read_text().splitlines()
    return json.loads(line)


def _image(tmp_path, name: str, size=(24, 16)) -> str:
    from PIL import Image as PILImage

    rng = np.random.default_rng(len(name))
    path = tmp_path / name
    PILImage.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8)).save(path)
    return str(path)


def test_each_step_says_its_kernel_as_given_and_its_options(tmp_path):
    src = _image(tmp_path, "a.png")
    sharpen = "0 -1 0; -1 5 -1; 0 -1 0"
    record = _run_report(
        tmp_path, "apply", src, "-k", "gaussian:5", "-k", sharpen, "--flip", "--bias", "0.1",
        "--pad-mode", "replicate", "--stride", "2", "-o", str(tmp_path / "o.png"),
    )  # fmt: skip
    first, second = record["steps"]
    assert (first["kernel"], second["kernel"]) == ("gaussian:5", sharpen)
    for step in (first, second):
        assert (
            step["flip"] is True and step["normalize"] is False and step["bias"] == [0.1]
        )  # as given
        assert step["pad_mode"] == "replicate" and step["stride"] == [2, 2]
    assert first["weight_shape"] == [3, 1, 5, 5] and second["weight_shape"] == [3, 1, 3, 3]
    assert record["range"] == "clip" and record["depth"] == 8 and record["format"] == "PNG"
    assert record["background"] is None and record["quality"] is None


def test_a_filter_files_path_and_the_small_image_fallback(tmp_path):
    from tests.paths import FILTERS

    src = _image(tmp_path, "tiny.png", size=(2, 2))
    record = _run_report(
        tmp_path, "apply", src, "-k", str(FILTERS / "binomial5.txt"), "--normalize",
        "-o", str(tmp_path / "o.png"),
    )  # fmt: skip
    (step,) = record["steps"]
    assert step["kernel"] == str(FILTERS / "binomial5.txt") and step["normalize"] is True
    assert step["pad_mode"] == "symmetric"  # 2x2 is too small to mirror 2 pixels


def test_upsamplings_kernel_names_its_factor(tmp_path):
    src = _image(tmp_path, "s.png")
    record = _run_report(
        tmp_path, "upsample", src, "--factor", "3", "-k", "bicubic", "-o", str(tmp_path / "o.jpg")
    )
    (step,) = record["steps"]
    assert step["kernel"] == "bicubic:3" and step["pad_mode"] == "replicate"
    assert step["transpose"] is True and step["stride"] == [3, 3]
    assert record["format"] == "JPEG" and record["quality"] == 95 and record["depth"] == 8


def test_range_depth_and_format_are_what_was_written(tmp_path):
    src = _image(tmp_path, "r.png")
    raw = _run_report(tmp_path, "apply", src, "-k", "sobel-x", "-o", str(tmp_path / "o.npy"))
    assert (raw["range"], raw["depth"], raw["format"]) == (None, 32, "NPY")
    assert raw["clipped_low"] == raw["clipped_high"] == 0  # raw values: nothing clipped
    stretched = _run_report(
        tmp_path, "apply", src, "-k", "sobel-x", "--range", "normalize", "--depth", "16",
        "-o", str(tmp_path / "o.tif"),
    )  # fmt: skip
    assert (stretched["range"], stretched["depth"], stretched["format"]) == (
        "normalize",
        16,
        "TIFF",
    )


def test_clipped_fractions_and_the_two_times(tmp_path):
    src = _image(tmp_path, "c.png", size=(40, 30))
    record = _run_report(tmp_path, "apply", src, "-k", "sharpen", "-o", str(tmp_path / "o.png"))
    values = 1 * 3 * 30 * 40
    assert record["clipped_low"] > 0 and record["clipped_high"] > 0
    assert record["clipped_low_fraction"] == record["clipped_low"] / values
    assert record["clipped_high_fraction"] == record["clipped_high"] / values
    # seconds: from reading to written, so never less than the filtering alone
    assert 0 < record["filter_seconds"] <= record["seconds"]


def test_the_builder_takes_what_the_record_says():
    from convcli.images.flatten import WHITE
    from convcli.jobs.step import Step
    from convcli.kernels import load_filter

    geo = conv2d_geometry((1, 3, 10, 10), (3, 1, 3, 3), padding="same", groups=3,
                          padding_mode="circular")  # fmt: skip
    r = ImageReport(
        "in.png", "out.jpg", (1, 4, 10, 10), (1, 4, 10, 10), [((3, 1, 3, 3), geo)],
        0.0, 1.0, 40, 0, 0.5, filter_seconds=0.25,
        kernels=(Step(load_filter("box:3"), bias=(0.5,)),), value_range="abs", depth=8,
        format="JPEG", background=WHITE, quality=80,
    )  # fmt: skip
    record = json.loads(json_record(r))
    assert record["steps"][0]["kernel"] == "box:3" and record["steps"][0]["bias"] == [0.5]
    assert record["steps"][0]["pad_mode"] == "circular"
    assert record["clipped_low_fraction"] == 0.1 and record["clipped_high_fraction"] == 0.0
    assert (record["seconds"], record["filter_seconds"]) == (0.5, 0.25)
    assert (record["range"], record["background"], record["quality"]) == ("abs", "#ffffff", 80)
    assert text_line(r).endswith("clipped 10.00% in 0.50 s")


def test_json_records_are_strict_json_with_null_for_non_finite_numbers():
    geo = conv2d_geometry((1, 3, 10, 10), (3, 1, 3, 3), padding=1, groups=3)
    record = ImageReport(
        "in.png", "out.png", (1, 3, 10, 10), geo.output_shape, [((3, 1, 3, 3), geo)],
        float("-inf"), float("nan"), 0, 3, 0.1,
    )  # fmt: skip

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    parsed = json.loads(json_record(record), parse_constant=refuse)
    assert parsed["min"] is None and parsed["max"] is None
