"""Option values as the command line writes them, parsed: ``S|H,W`` pairs, padding
specs, number lists; whether the user gave an option at all; and the pipeline steps
they make with the kernels (the command line over the filter file over defaults).

Bad text raises :class:`click.BadParameter` naming the option (exit 2).
"""

from __future__ import annotations

import math
import re

import click
from click.core import ParameterSource

from convcli import kernels
from convcli.conv.geometry import pair
from convcli.conv.padding import resolve_padding
from convcli.errors import KernelError, shown_name
from convcli.jobs import convolutions, pipeline
from convcli.kernels.named import UPSAMPLING


def fields(text: str, name: str, *, separators: str = ",") -> list[str]:
    """The comma-separated fields of an option's value, stripped; an empty one (``2,,3``,
    ``2,``, ``''``) is refused rather than dropped, which would shift the values after it."""
    parts = re.split(f"[{re.escape(separators)}]", text)
    if any(not p.strip() for p in parts):
        raise click.BadParameter(
            f"{text!r} has an empty field; give one value between each pair of commas",
            param_hint=name,
        )
    return [p.strip() for p in parts]


# ASCII only: Python's int() and float() also take 3_0 (as 30) and other scripts' digits.
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|nan)", re.I)


def _integers(parts: list[str]) -> tuple[int, ...]:
    if not all(_INTEGER.fullmatch(p) for p in parts):
        raise ValueError(parts)
    return tuple(int(p) for p in parts)


def pair_or_int(text: str | None, name: str):
    """``2`` -> 2, ``2,3`` (or ``2x3``) -> (2, 3); None stays None."""
    if text is None:
        return None
    parts = fields(text, name, separators=",x")
    try:
        values = _integers(parts)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an integer or H,W", param_hint=name) from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values
    raise click.BadParameter(f"{text!r} takes one value or two (H,W)", param_hint=name)


def chunks_spec(text: str | None) -> tuple[int, int] | None:
    """``auto`` (or None) -> None; ``N`` -> (N, N); ``H,W`` -> (H, W): output block sizes."""
    if text is None or text.strip().lower() == "auto":
        return None
    value = pair_or_int(text, "--chunks")
    sizes = (value, value) if isinstance(value, int) else value
    if min(sizes) < 1:
        raise click.BadParameter(f"{text!r}: block sizes are positive", param_hint="--chunks")
    return sizes


def padding_spec(text: str | None):
    """``same``/``valid`` as they are; ``1``, ``1,2``, ``1,2,3,4`` as int or tuple."""
    if text is None:
        return None
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    parts = fields(text, "--padding")
    try:
        values = _integers(parts)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not same, valid, N, H,W or T,B,L,R (integers)", param_hint="--padding"
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
    parts = fields(text, name)
    if not all(_NUMBER.fullmatch(p) for p in parts):
        raise click.BadParameter(
            f"{text!r} is not a number or a list of numbers (such as 0.1,-2)", param_hint=name
        )
    values = tuple(float(p) for p in parts)
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"{text!r}: give finite numbers (not nan or inf)", param_hint=name)
    return values


def given(ctx: click.Context, name: str) -> bool:
    """True when the user gave option ``name`` (on the command line or in the environment)."""
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )


DEFAULTS = {
    "stride": 1,
    "padding": "same",
    "dilation": 1,
    "groups": None,
    "pad_mode": None,  # reflect, or symmetric for images too small to mirror
    "flip": False,
    "normalize": False,
}


def steps(ctx: click.Context, options: dict, *, transpose: bool) -> list[pipeline.Step]:
    """Kernels with their options: the command line over the filter file over defaults."""
    specs = list(options["kernels"])
    factor = options.get("factor")
    if transpose:
        specs = specs or ["bilinear"]
        specs = [f"{s}:{factor}" if s.strip().lower() in UPSAMPLING else s for s in specs]
    parsed = {
        "stride": pair_or_int(options["stride"], "--stride"),
        "padding": padding_spec(options["padding"]),
        "dilation": pair_or_int(options["dilation"], "--dilation"),
        "groups": options["groups"],
        "pad_mode": options.get("pad_mode"),
        "flip": options["flip"],
        "normalize": options["normalize"],
    }
    defaults = dict(DEFAULTS, stride=factor) if transpose else DEFAULTS
    bias = floats(options["bias"], "--bias")
    output_padding = pair_or_int(options.get("output_padding"), "--output-padding") or 0
    steps = []
    for spec in specs:
        f = kernels.load_filter(spec)
        values = {}
        for key, default in defaults.items():
            if parsed[key] is not None and given(ctx, key):
                values[key] = parsed[key]
            else:
                values[key] = f.options.get(key, default)
        _check_step(spec, f, values)
        step = pipeline.Step(
            f, bias=bias, output_padding=output_padding, transpose=transpose, **values
        )
        convolutions.check_step(step)  # before any input is read
        steps.append(step)
    return steps


def _check_step(spec: str, f: kernels.Filter, values: dict) -> None:
    """What a step's options alone decide, checked once before any input is read, by the
    validators the library itself uses (so the messages are the library's)."""
    pair(values["stride"], "stride")
    pair(values["dilation"], "dilation")
    if not isinstance(values["padding"], str):
        resolve_padding(values["padding"], kernel_size=(1, 1), input_size=(1, 1))
    if values["normalize"]:
        try:
            for weight in f.weights:
                kernels.normalize_kernel(weight)
        except KernelError as err:
            raise KernelError(f"-k {shown_name(spec)}: {err}") from None
