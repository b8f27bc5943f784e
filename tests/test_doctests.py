"""The examples in the library's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import convcli
from convcli.errors import DependencyError


def _modules() -> list[str]:
    names = [convcli.__name__]
    for info in pkgutil.walk_packages(convcli.__path__, prefix="convcli."):
        if not info.name.endswith(("__main__", ".cli")):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except DependencyError as err:  # convcli.scale's Dask modules, without the [dask] extra
        pytest.skip(str(err))
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
