"""batch.py: outputs for several inputs, checked before any work."""

from __future__ import annotations

import pytest

from convcli import ParameterError
from convcli.batch import frame_path, plan_outputs


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
