"""Option values as the command line writes them, parsed: ``S|H,W`` pairs, padding
specs, number lists; and whether the user gave an option at all (a filter file's
own options apply unless the command line gives them).

Bad text raises :class:`click.BadParameter` naming the option (exit 2).
"""

from __future__ import annotations

import math

import click
from click.core import ParameterSource


def pair_or_int(text: str | None, name: str):
    """``2`` -> 2, ``2,3`` -> (2, 3); None stays None."""
    if text is None:
        return None
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an integer or H,W", param_hint=name) from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values
    raise click.BadParameter(f"{text!r} takes one value or two (H,W)", param_hint=name)


def padding_spec(text: str | None):
    """``same``/``valid`` as they are; ``1``, ``1,2``, ``1,2,3,4`` as int or tuple."""
    if text is None:
        return None
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: use same, valid, N, H,W or T,B,L,R", param_hint="--padding"
        ) from None
    if len(values) not in (1, 2, 4):
        raise click.BadParameter(
            f"{text!r} has {len(values)} values; use N, H,W or T,B,L,R", param_hint="--padding"
        )
    return values[0] if len(values) == 1 else values


def floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """``0.1,-2`` -> (0.1, -2.0); finite numbers only (NaN would be written as black)."""
    if text is None:
        return None
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of numbers", param_hint=name) from None
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"{text!r}: give finite numbers (not nan or inf)", param_hint=name)
    return values


def given(ctx: click.Context, name: str) -> bool:
    """True when the user gave option ``name`` (on the command line or in the environment)."""
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )
