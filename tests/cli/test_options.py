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
    with pytest.raises(click.BadParameter, match="not a number or a list of numbers"):
        floats("a,b", "--bias")


@pytest.mark.parametrize(
    ("parse", "text", "needle"),
    [
        # Empty fields were dropped: --stride 2,,3 was (2, 3), --bias 0.1,,0.2,0.3 three values.
        (lambda t: pair_or_int(t, "--stride"), "2,,3", "'2,,3' has an empty field"),
        (lambda t: pair_or_int(t, "--stride"), "2,", "'2,' has an empty field"),
        (padding_spec, "1,,2", "'1,,2' has an empty field"),
        (lambda t: floats(t, "--bias"), "0.1,,0.2,0.3", "has an empty field"),
        (lambda t: floats(t, "--bias"), "", "'' has an empty field"),
        # Python reads 3_0 as 30, and other scripts' digits as digits.
        (lambda t: pair_or_int(t, "--stride"), "3_0", "'3_0' is not an integer"),
        (padding_spec, "1_0", "'1_0' is not same, valid"),
        (lambda t: floats(t, "--bias"), "0_1", "'0_1' is not a number"),
        (lambda t: pair_or_int(t, "--stride"), "\u0663", "is not an integer"),
    ],
)
def test_option_lists_refuse_empty_fields_and_underscores(parse, text, needle):
    with pytest.raises(click.BadParameter) as refused:
        parse(text)
    assert needle in refused.value.format_message()
