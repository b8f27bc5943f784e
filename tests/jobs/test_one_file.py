"""The per-file job: a multi-frame input's outputs are one unit."""

from __future__ import annotations

import os

import pytest
from PIL import Image as PILImage

from convcli.errors import OutputError
from convcli.jobs import pipeline
from convcli.jobs.one_file import JobOptions, run_file
from convcli.jobs.pipeline import Step
from convcli.kernels import load_filter


@pytest.fixture
def animation(tmp_path) -> str:
    frames = [PILImage.new("L", (6, 5), v) for v in (0, 100, 200)]
    path = tmp_path / "in.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return str(path)


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


def test_every_frame_output_is_checked_before_any_filtering(animation, tmp_path, monkeypatch):
    os.mkdir(tmp_path / "o-2.png")  # the last frame's name is taken by a directory

    def never(*args, **kwargs):
        raise AssertionError("filtered before the outputs were checked")

    monkeypatch.setattr(pipeline, "apply_steps", never)
    target = str(tmp_path / "o-{frame}.png")
    outcome = run_file(animation, target, [Step(load_filter("box:3"))], JobOptions())
    assert isinstance(outcome.error, OutputError) and "o-2.png" in str(outcome.error)
    assert outcome.staged == [] and not (tmp_path / "o-0.png").exists()
    assert leftovers(tmp_path) == []


def test_frame_outputs_are_put_in_place_all_or_nothing(animation, tmp_path):
    (tmp_path / "o-0.png").write_bytes(b"old frame 0")
    target = str(tmp_path / "o-{frame}.png")
    outcome = run_file(animation, target, [Step(load_filter("box:3"))], JobOptions())
    assert outcome.error is None and len(outcome.staged) == 3
    os.mkdir(tmp_path / "o-2.png")  # appears between writing and committing
    with pytest.raises(OutputError, match="o-2.png"):
        outcome.commit()
    # frame 0's old file is back, frame 1 (new) is gone: none of this input's frames stays
    assert (tmp_path / "o-0.png").read_bytes() == b"old frame 0"
    assert not (tmp_path / "o-1.png").exists()
    assert leftovers(tmp_path) == [] and outcome.staged == []


def test_frame_outputs_in_place_together_replace_the_old_ones(animation, tmp_path):
    (tmp_path / "o-1.png").write_bytes(b"old frame 1")
    target = str(tmp_path / "o-{frame}.png")
    outcome = run_file(animation, target, [Step(load_filter("box:3"))], JobOptions())
    outcome.commit()
    frames = [PILImage.open(tmp_path / f"o-{n}.png").convert("L") for n in range(3)]
    values = [frame.getpixel((2, 2)) for frame in frames]
    assert values == [0, 100, 200]
    assert sorted(os.listdir(tmp_path)) == ["in.gif", "o-0.png", "o-1.png", "o-2.png"]
