"""options.py: option text as the command line writes it, parsed or refused by name."""

from __future__ import annotations

import click
import pytest

from convcli.cli.options import floats, padding_spec, pair_or_int


def test_pairs_and_single_values():
    assert pair_or_int("2", "--stride") == 2
    assert pair_or_int("2,3", "--stride") == (2, 3)
    assert pair_or_int("2x3", "--dilation") == (2, 3)
    assert pair_or_int(None, "--stride") is None
    with pytest.raises(click.BadParameter, match="one value or two"):
        pair_or_int("1,2,3", "--stride")
    with pytest.raises(click.BadParameter, match="not an integer"):
        pair_or_int("two", "--stride")


def test_padding_specs():
    assert padding_spec(" SAME ") == "same" and padding_spec("valid") == "valid"
    assert padding_spec("1") == 1
    assert padding_spec("1,2") == (1, 2)
    assert padding_spec("0,1,2,3") == (0, 1, 2, 3)
    with pytest.raises(click.BadParameter, match="3 values"):
        padding_spec("1,2,3")
    with pytest.raises(click.BadParameter, match="same, valid"):
        padding_spec("half")


def test_number_lists_must_be_finite():
    assert floats("0.5,-1", "--bias") == (0.5, -1.0)
    for text in ("nan", "0.1,inf"):
        with pytest.raises(click.BadParameter, match="finite"):
            floats(text, "--bias")
    with pytest.raises(click.BadParameter, match="not a list of numbers"):
        floats("a,b", "--bias")
