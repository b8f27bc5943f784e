"""The package's layers: imports run one way, downwards, and the library loads without the
command line, Pillow or Dask.

    cli -> scale -> jobs -> shapes -> images / kernels -> conv -> errors
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import convcli
from tests.paths import ROOT

# A package may import itself and the packages of lower rank; equal ranks (images and
# kernels) do not import each other.
RANKS = {
    "errors": 0,
    "conv": 1,
    "images": 2,
    "kernels": 2,
    "shapes": 3,
    "jobs": 4,
    "scale": 5,
    "cli": 6,
}


def _imports(path) -> list[tuple[int, str]]:
    """(line, module) of every ``convcli.*`` import in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "convcli":
                found += [(node.lineno, f"convcli.{alias.name}") for alias in node.names]
            elif node.module.startswith("convcli."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("convcli.")]
    return found


def _layer(module: str) -> str:
    """The package of ``convcli.package.module`` (``convcli.X`` from the top: X)."""
    return module.split(".")[1]


def test_every_package_is_ranked():
    packages = {p.name for p in (ROOT / "convcli").iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(RANKS), f"unranked packages: {packages - set(RANKS)}"


def test_imports_run_downwards():
    wrong = []
    for path in sorted((ROOT / "convcli").rglob("*.py")):
        parts = path.relative_to(ROOT / "convcli").with_suffix("").parts
        if len(parts) == 1:  # __init__, __main__, errors: the top sees everything
            continue
        layer = parts[0]
        for line, module in _imports(path):
            if module == "convcli.__version__":  # the one name subpackages take from the top
                continue
            target = _layer(module)
            if target == layer:
                continue
            if target not in RANKS or RANKS[target] >= RANKS[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return {name.split(".")[0] for name in out.split()}


def test_the_library_loads_without_click_pillow_or_dask():
    loaded = _loaded_after(
        "import numpy as np, convcli\n"
        "convcli.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)))\n"
        "convcli.conv2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), "
        "np.ones((1, 1, 3, 3)))"
    )
    assert not loaded & {"click", "PIL", "dask", "distributed", "zarr", "tifffile"}


def test_block_plans_load_without_dask():
    """A writer that streams blocks without Dask can plan and run them."""
    loaded = _loaded_after("import convcli.scale, convcli.scale.plan, convcli.scale.blocks")
    assert not loaded & {"dask", "distributed", "click", "PIL"}


@pytest.mark.parametrize("package", ["convcli.kernels", "convcli.jobs.pipeline"])
def test_filters_and_steps_load_without_the_command_line(package):
    assert not _loaded_after(f"import {package}") & {"click", "dask"}


def test_help_loads_neither_numpy_nor_pillow():
    loaded = _loaded_after(
        "import contextlib, io\n"
        "from convcli.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['apply', '--help'])"
    )
    assert not loaded & {"numpy", "PIL", "dask"}


@pytest.mark.parametrize("name", convcli.__all__)
def test_every_public_name_resolves(name):
    assert getattr(convcli, name) is not None
