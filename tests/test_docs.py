"""The README stays true: its command reference is --help, its examples run, and CI
installs and tests exactly as it says."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "scripts"))

import readme  # noqa: E402


def test_command_reference_matches_help():
    assert readme.updated(README) == README, "run: python scripts/readme.py"


def test_every_command_is_in_the_reference():
    for command in ("convcli apply", "convcli upsample", "convcli shape", "convcli kernels"):
        assert f"### `{command}`" in README


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def test_setup_commands_come_first_and_ci_runs_them():
    first, second = _blocks(README)[:2]
    assert "pip install -e ." in first and "convcli apply sample_images/" in first
    assert "pip install -e '.[test]'" in second and "python -m pytest -q" in second
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "python -m pytest -q" in ci


def test_readme_examples_run(tmp_path):
    block = README.split("<!-- examples")[1]
    commands = [line for line in _blocks(block)[0].splitlines() if line.strip()]
    for name in ("sample_images", "filters"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shim = tmp_path / "bin" / "convcli"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m convcli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = dict(
        os.environ, PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT)
    )
    for command in commands:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "big.png").exists() and (tmp_path / "coffee-sharp.png").exists()


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "chelsea.png", "coffee.png"])
def test_sample_images_ship_with_their_licence(name):
    assert (ROOT / "sample_images" / name).exists()
    assert name in (ROOT / "sample_images" / "README.md").read_text()
