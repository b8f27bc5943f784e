"""batch.py: outputs for several inputs, checked before any work."""

from __future__ import annotations

import pytest

from convcli import OutputError, ParameterError
from convcli.jobs.batch import check_directories, check_report_path, frame_path, plan_outputs


def test_directory_template_and_stdout(tmp_path):
    assert plan_outputs(["a/x.png", "y.jpg"], f"{tmp_path}/") == [
        f"{tmp_path}/x.png",
        f"{tmp_path}/y.jpg",
    ]
    assert plan_outputs(["x.png"], str(tmp_path), fmt="tiff") == [f"{tmp_path}/x.tiff"]
    assert plan_outputs(["a/x.png"], "{name}.{ext}.npy") == ["x.png.png.npy"]
    assert plan_outputs(["-"], "-") == ["-"]
    assert frame_path("f{frame}.png", 3) == "f3.png"
    assert plan_outputs(["anim.gif"], "f{frame}.png") == ["f{frame}.png"]


@pytest.mark.parametrize(
    ("inputs", "output", "needle"),
    [
        (["a.png", "b.png"], "one.png", "2 inputs need"),
        (["a.png", "b.png"], "-", "one input"),
        (["a/x.png", "b/x.png"], "{stem}.png", "both be written"),
        (["a.png"], "{colour}.png", "fields are"),
        (["a.png"], "out.xyz", "extension"),
        (["a.png"], "{stem", "malformed"),
    ],
)
def test_bad_plans(inputs, output, needle):
    with pytest.raises(ParameterError, match=needle):
        plan_outputs(inputs, output)


@pytest.mark.parametrize(
    "output", ["{stem.__class__}.png", "{stem:>99999999999}.png", "{stem!s}.png", "{0}.png"]
)
def test_templates_take_plain_fields_only(output):
    with pytest.raises(ParameterError, match="only plain fields"):
        plan_outputs(["a.png"], output)


def test_template_in_a_directory_output(tmp_path):
    assert plan_outputs(["a/x.png"], f"{tmp_path}/{{stem}}-dir/") == [f"{tmp_path}/x-dir/x.png"]


def test_directories_are_checked_once_and_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="missing' does not exist"):
        check_directories([str(tmp_path / "ok.png"), str(tmp_path / "missing" / "a.png")])
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_directories([str(tmp_path / "file" / "deeper" / "a.png")])
    check_directories([str(tmp_path / "a{frame}.png"), "-"])


def test_report_path_is_checked_like_an_output(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(b"x")
    with pytest.raises(ParameterError, match="is the input"):
        check_report_path(str(source), [str(source)], [])
    with pytest.raises(ParameterError, match="also an image output"):
        check_report_path(str(tmp_path / "f12.png"), [], [str(tmp_path / "f{frame}.png")])
    check_report_path(str(tmp_path / "run.jsonl"), [str(source)], [str(tmp_path / "o.png")])
    check_report_path("-", [], ["-"])
