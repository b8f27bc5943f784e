"""File names that hold newlines, escape sequences or undecodable bytes (all legal on
Linux): every message stays one line, the name quoted as a Python string literal, and
JSON reports keep the exact name."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from convcli.cli.app import cli
from tests import hostile
from tests.hostile import assert_one_error, run

NAMES = ["a\nb.png", "a\rb.png", "\x1b[31mred.png", "tab\there.png"]
# A line of stderr is convcli's own: a message that starts where convcli starts them.
LINE = re.compile(r"^(Error: |Warning: |'|<stdin> ->|- ->)")


def _image(path: Path) -> Path:
    PILImage.fromarray(hostile.pixels()).save(path, format="PNG")
    return path


def _invoke(*args) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr.splitlines()


@pytest.mark.parametrize("name", NAMES)
def test_apply_per_image_line_warning_and_report_are_one_line_each(tmp_path, name):
    source = _image(tmp_path / name)
    kernel = tmp_path / "k\n.txt"
    kernel.write_text("1 2 1\n2 4 2\n1 2 1\n")  # sums to 16: most values clip, a warning
    target = tmp_path / ("out" + name)
    report = tmp_path / "report.jsonl"
    code, lines = _invoke("apply", source, "-k", kernel, "-o", target, "--report", report)
    assert code == 0 and target.exists()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{str(source)!r} -> {str(target)!r}: (1,")
    assert lines[1].startswith(f"Warning: {str(source)!r}: ") and repr(str(kernel)) in lines[1]
    record = json.loads(report.read_text())
    assert (record["input"], record["output"]) == (str(source), str(target))
    assert record["steps"][0]["kernel"] == str(kernel)


@pytest.mark.parametrize("command", ["apply", "upsample", "shape"])
def test_a_damaged_file_with_a_newline_in_its_name_is_one_error_line(tmp_path, command):
    bad = tmp_path / "bad\nfile.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    args = {"apply": ["-k", "box:3"], "upsample": ["--factor", "2"], "shape": ["-k", "box:3"]}
    output = [] if command == "shape" else ["-o", tmp_path / "o.png"]
    line = assert_one_error(run(command, bad, *args[command], *output))
    assert line.startswith(f"Error: {str(bad)!r}: ")


@pytest.mark.parametrize("command", ["apply", "upsample"])
def test_good_files_with_control_characters_in_every_name_in_a_subprocess(tmp_path, command):
    sources = [_image(tmp_path / name) for name in NAMES]
    args = ["-k", "box:3"] if command == "apply" else ["--factor", "2"]
    result = run(command, *sources, *args, "-o", tmp_path / "out\n{stem}.png", "--report", "-")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == len(NAMES) and all(LINE.match(line) for line in lines), lines
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"] for r in records] == [str(s) for s in sources]
    assert [r["output"] for r in records] == [str(tmp_path / f"out\n{s.stem}.png") for s in sources]
    assert all(os.path.exists(r["output"]) for r in records)


def test_shape_of_a_file_with_a_newline_and_a_bank_spec_named_so(tmp_path):
    source = _image(tmp_path / "a\nb.png")
    result = run("shape", source, "-k", "sobel")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    kernel = tmp_path / "bad\nk.txt"
    kernel.write_text("1 2 x\n")
    line = assert_one_error(run("shape", source, "-k", kernel), 2)
    assert line.startswith(f"Error: {str(kernel)!r}, line 1: ")


def test_errors_naming_outputs_and_kernel_files_stay_on_one_line(tmp_path):
    source = _image(tmp_path / "in.png")
    missing = tmp_path / "no\ndir" / "o.png"
    line = assert_one_error(run("apply", source, "-k", "box:3", "-o", missing))
    assert repr(str(missing)) in line and repr(str(missing.parent)) in line
    kernel = tmp_path / "w\n.json"
    kernel.write_text('{"weight": [[1]], "stride": 0}')
    line = assert_one_error(run("apply", source, "-k", kernel, "-o", tmp_path / "o.png"), 2)
    assert line.startswith(f"Error: {str(kernel)!r}: 'stride' must be")


def test_undecodable_bytes_in_a_name_are_escaped_not_a_crash(tmp_path):
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.png"
    with open(raw, "wb") as stream:
        PILImage.fromarray(np.zeros((4, 4), np.uint8)).save(stream, format="PNG")
    result = run("apply", os.fsdecode(raw), "-k", "box:3", "-o", tmp_path / "o.png")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(repr(os.fsdecode(raw)) + " -> "), result.stderr


def test_upsample_and_shape_through_click_keep_one_line_per_message(tmp_path):
    source = _image(tmp_path / "a\nb.png")
    target = tmp_path / "up\n.png"
    code, lines = _invoke("upsample", source, "--factor", "2", "-o", target)
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith(f"{str(source)!r} -> {str(target)!r}: (1,3,24,32) -> (1,3,48,64)")
    bad = tmp_path / "bad\nfile.png"
    bad.write_bytes(b"not an image at all")
    for args in (["shape", bad, "-k", "box:3"], ["upsample", bad, "--factor", "2", "-o", target]):
        code, lines = _invoke(*args)
        assert code == 1 and len(lines) == 1, lines
        assert lines[0].startswith(f"Error: {str(bad)!r}: not an image convcli can read")
