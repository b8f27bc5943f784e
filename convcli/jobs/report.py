"""Shape reports: one human line per image (stderr) and JSON Lines records (--report)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field

from convcli.conv.geometry import ConvGeometry
from convcli.errors import ConvcliError, OutputError, shown_name
from convcli.images.flatten import Colour, colour_text
from convcli.jobs.step import Step


@dataclass
class ImageReport:
    """What happened to one image (one sample of a batch), and what it takes to do it
    again: the steps as given, how values became pixels, what was written.

    Every path that filters an image builds its record with this class, so that the
    record (:func:`json_record`) is the same whichever way it ran.
    """

    input: str
    output: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    # (weight shape, geometry) per kernel; a filter bank's shape is (K, F, C, Hf, Wf)
    steps: list[tuple[tuple[int, ...], ConvGeometry]]
    minimum: float
    maximum: float
    clipped_low: int
    clipped_high: int
    seconds: float  # wall time from the start of reading to the outputs written
    outputs: tuple[str, ...] = field(default=())  # the files written (one per {frame})
    filter_seconds: float | None = None  # the steps alone
    kernels: tuple[Step, ...] = ()  # the steps run, in order (their specs and options)
    value_range: str | None = None  # clip, abs, normalize; None: raw values (.npy)
    depth: int | None = None  # bits per value written: 8, 16, or 32 (.npy floats)
    format: str | None = None  # PNG, JPEG, TIFF, WEBP, BMP, PPM, NPY
    background: Colour | None = None  # what alpha was flattened over, if it was
    quality: int | None = None  # JPEG and WebP

    @property
    def values(self) -> int:
        """How many values the output holds (every channel, alpha included)."""
        size = 1
        for d in self.output_shape:
            size *= d
        return size

    @property
    def clipped_share(self) -> float:
        size = self.values
        return (self.clipped_low + self.clipped_high) / size if size else 0.0

    def fraction(self, count: int) -> float:
        """``count`` as a share of the output's values."""
        return count / self.values if self.values else 0.0


def _shape(shape) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def text_line(r: ImageReport) -> str:
    """One line: input, shapes in and out, weight shape, stride, padding, clipped share.

    An image written as one file per frame shows the first and the last of them.

    Examples
    --------
    >>> from convcli.conv.geometry import conv2d_geometry
    >>> g = conv2d_geometry((1, 1, 8, 8), (1, 1, 3, 3), padding="same")
    >>> print(text_line(ImageReport("a", "b", (1, 1, 8, 8), (1, 1, 8, 8),
    ...                             [((1, 1, 3, 3), g)], 0.0, 1.0, 0, 2, 0.01)))
    ... # doctest: +ELLIPSIS
    a -> b: (1,1,8,8) -> (1,1,8,8) weight (1,1,3,3) stride (1,1) ... clipped 3.12% in 0.01 s
    """
    parts = []
    for weight, geo in r.steps:
        kind = "transposed " if geo.transpose else ""
        bank = f" x{weight[0]} combined" if len(weight) == 5 else ""
        parts.append(
            f"{kind}weight {_shape(weight[-4:])}{bank} stride {_shape(geo.stride)} "
            f"padding {_shape(geo.padding)}"
        )
    output = shown_name(r.output)
    if len(r.outputs) > 1:
        first, last = shown_name(r.outputs[0]), shown_name(r.outputs[-1])
        output = f"{first} .. {last} ({len(r.outputs)} files)"
    return (
        f"{shown_name(r.input)} -> {output}: {_shape(r.input_shape)} -> {_shape(r.output_shape)} "
        f"{'; '.join(parts)} clipped {100 * r.clipped_share:.2f}% in {r.seconds:.2f} s"
    )


def json_record(r: ImageReport) -> str:
    """One JSON Lines record with the fields documented in the README.

    With several kernels, ``weight_shape``, ``stride``, ``padding``, ``dilation`` and
    ``groups`` describe the first and ``steps`` lists them all. Shapes are this image's
    (its own N), also when it was filtered in a batch with others. A filter bank's step
    also has ``bank``: its K weights, each of ``weight_shape``, whose responses combine.
    A step's ``kernel`` is its spec as given (``-k``), with the options that change its
    weight (``flip``, ``normalize``, ``bias``) and the border (``pad_mode``) as run.
    """
    frames = r.input_shape[0]
    kernels = [step_fields(step) for step in r.kernels] or [step_fields(None)] * len(r.steps)
    steps = [
        {
            **given,
            "weight_shape": list(weight[-4:]),
            **({"bank": weight[0]} if len(weight) == 5 else {}),
            "stride": list(geo.stride),
            "padding": list(geo.padding),
            "dilation": list(geo.dilation),
            "groups": geo.groups,
            "transpose": geo.transpose,
            "output_padding": list(geo.output_padding),
            "output_shape": [frames, *geo.output_shape[1:]],
            "pad_mode": geo.padding_mode,
        }
        for (weight, geo), given in zip(r.steps, kernels, strict=True)
    ]
    first = steps[0]
    record = {
        "input": r.input,
        "output": r.output,
        "input_shape": list(r.input_shape),
        "weight_shape": first["weight_shape"],
        "stride": first["stride"],
        "padding": first["padding"],
        "dilation": first["dilation"],
        "groups": first["groups"],
        "output_shape": list(r.output_shape),
        "min": r.minimum,
        "max": r.maximum,
        "clipped_low": r.clipped_low,
        "clipped_high": r.clipped_high,
        "seconds": round(r.seconds, 6),
        "steps": steps,
        "filter_seconds": None if r.filter_seconds is None else round(r.filter_seconds, 6),
        "clipped_low_fraction": r.fraction(r.clipped_low),
        "clipped_high_fraction": r.fraction(r.clipped_high),
        "range": r.value_range,
        "depth": r.depth,
        "format": r.format,
        "background": None if r.background is None else colour_text(r.background),
        "quality": r.quality,
    }
    return json.dumps(_finite(record), allow_nan=False)


def _finite(value):
    """``value`` with every non-finite float as None: strict JSON (json.dumps writes NaN
    and Infinity, which JSON parsers other than Python's refuse).

    Examples
    --------
    >>> _finite({"min": float("-inf"), "steps": [{"bias": [float("nan"), 1.0]}]})
    {'min': None, 'steps': [{'bias': [None, 1.0]}]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def step_fields(step: Step | None) -> dict:
    """What a record says of a step besides its geometry: the spec as given, and the
    options that change the weight it ran (all None when the step is not known).

    Examples
    --------
    >>> from convcli.kernels import load_filter
    >>> step_fields(Step(load_filter("box:3"), normalize=True))
    {'kernel': 'box:3', 'flip': False, 'normalize': True, 'bias': None}
    """
    if step is None:
        return dict.fromkeys(("kernel", "flip", "normalize", "bias"))
    bias = step.bias if step.bias is not None else step.filter.bias
    return {
        "kernel": step.filter.source or None,
        "flip": step.flip,
        "normalize": step.normalize,
        "bias": None if bias is None else [float(b) for b in bias],
    }


def error_record(input: str, output: str | None, error: str) -> str:
    """The JSON Lines record of an input that failed: ``input``, ``output`` (when one
    was planned) and ``error``, the message shown on stderr.

    Examples
    --------
    >>> error_record("a.png", "out/a.png", "a.png: not an image")
    '{"input": "a.png", "output": "out/a.png", "error": "a.png: not an image"}'
    """
    record = {"input": input}
    if output is not None:
        record["output"] = output
    record["error"] = error
    return json.dumps(record)


class ReportStream:
    """The --report stream, opened once every check has passed; a failing write is one
    error at the end (images still go on) and the report stops there."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.error: ConvcliError | None = None
        self.stream = None
        if path is None:
            return
        if path == "-":
            self.stream = sys.stdout
            return
        try:
            self.stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as err:
            self._failed(err)

    def _failed(self, err: OSError) -> None:
        if isinstance(err, BrokenPipeError) and self.stream is sys.stdout:
            raise err
        self.error = OutputError(
            f"--report {shown_name(self.path)}: cannot write ({err.strerror or err})"
        )
        self.close()

    def write(self, line: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except OSError as err:
            self._failed(err)

    def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is None or stream is sys.stdout:
            return
        try:
            stream.close()
        except OSError as err:
            if self.error is None:
                self.stream = None
                self._failed(err)
