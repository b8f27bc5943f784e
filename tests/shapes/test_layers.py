"""layers.py: --layer specs of `convcli shape`, parsed strictly."""

from __future__ import annotations

import pytest

from convcli.errors import ParameterError
from convcli.shapes.layers import parse_layer


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        # t=banana was a plain convolution; without k its error was about k.
        ("k=3,t=banana", "t='banana' is not yes or no; use t=1 (transposed) or t=0"),
        ("t=banana", "t='banana' is not yes or no"),
        # The last value of a key given twice won silently.
        ("k=3,k=5", "key 'k' is given twice (k=3 and k=5); give it once"),
        ("s=2,k=3,S=3", "key 's' is given twice (s=2 and S=3)"),
        # Python's int() took 3_0 (30) and other scripts' digits.
        ("k=3_0", "k '3_0' must be integers"),
        ("k=\u0663", "must be integers"),
    ],
)
def test_bad_layer_specs_are_one_error_naming_the_key_and_value(text, needle):
    with pytest.raises(ParameterError) as refused:
        parse_layer(text)
    assert needle in str(refused.value) and f"layer {text!r}" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "transpose"), [("k=3,t=1", True), ("k=3,t=YES", True), ("k=3,t=no", False)]
)
def test_t_takes_yes_and_no_values(text, transpose):
    assert parse_layer(text).transpose is transpose
