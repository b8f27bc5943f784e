"""One picture in any container (PNG, TIFF, BMP) gives the same output bytes and the same
report: every decoder hands over its integers, so every container takes the same path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage

from convcli.cli.app import cli
from tests.paths import SAMPLES


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def containers(tmp_path_factory) -> dict[str, str]:
    """The same 8-bit RGB picture (flat areas, where a derivative sums to exactly 0) as
    PNG, TIFF and BMP."""
    folder = tmp_path_factory.mktemp("containers")
    with PILImage.open(SAMPLES / "chelsea.png") as image:
        values = np.asarray(image.convert("RGB"))[:96, :128].copy()
    values[:32] = 40  # flat: sobel-x gives 0 there, exactly
    paths = {}
    for suffix in ("png", "bmp"):
        paths[suffix] = str(folder / f"picture.{suffix}")
        PILImage.fromarray(values).save(paths[suffix])
    paths["tif"] = str(folder / "picture.tif")
    tifffile.imwrite(paths["tif"], values, photometric="rgb")
    return paths


@pytest.mark.parametrize("kernel", ["sobel-x", "0 -1 0; -1 5 -1; 0 -1 0"])
def test_every_container_gives_the_same_bytes_and_report(tmp_path, containers, kernel):
    outputs, reports = {}, {}
    for suffix, path in containers.items():
        out, report = tmp_path / f"{suffix}.png", tmp_path / f"{suffix}.jsonl"
        run("apply", path, "-k", kernel, "-o", out, "--report", report)
        outputs[suffix] = out.read_bytes()
        record = json.loads(report.read_text())
        for varying in ("input", "output", "seconds", "filter_seconds"):
            record.pop(varying)
        reports[suffix] = record
    assert outputs["tif"] == outputs["png"] and outputs["bmp"] == outputs["png"]
    assert reports["tif"] == reports["png"] and reports["bmp"] == reports["png"]
    assert reports["png"]["clipped_low"] > 0  # the counts compared are not all zero
