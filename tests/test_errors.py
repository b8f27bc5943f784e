"""The one exception hierarchy's helpers: names in messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convcli.errors import shown_name


@pytest.mark.parametrize("name", ["a.png", "in put.png", "été.png", "dir/x-1_{frame}.tif", "-"])
def test_printable_names_are_shown_as_they_are(name):
    assert shown_name(name) == name and shown_name(Path(name)) == str(Path(name))


@pytest.mark.parametrize(
    "name", ["a\nb.png", "a\rb", "\x1b[2J.png", "tab\t.png", "\x7f", "\u2028x", "\udcff.png"]
)
def test_names_that_would_not_print_as_one_line_are_a_python_literal(name):
    shown = shown_name(name)
    assert shown == repr(name) and shown.isprintable() and eval(shown) == name  # noqa: S307


def test_bytes_names_are_decoded_as_the_file_system_does():
    assert shown_name(b"\xff.png") == repr(os.fsdecode(b"\xff.png"))
