"""``convcli shape --diagram``: the pictures of the convolution ``shape`` just explained,
one per layer of a ``--layer`` chain, with the numbers (``--values``) taken the way
``apply`` would take them (the filter file's flip and normalize included).
"""

from __future__ import annotations

import os

import numpy as np

from convcli import kernels
from convcli.cli import console
from convcli.conv.geometry import ConvGeometry
from convcli.errors import ParameterError, shown_name
from convcli.images.reading import Image
from convcli.jobs import pipeline
from convcli.shapes import diagram, pictures
from convcli.shapes.calculator import ShapeResult
from convcli.shapes.layers import ChainResult

INDEX = "{index}"


def check_options(options: dict, *, source: str) -> None:
    """What the options alone decide, before anything is read: the picture's format,
    and that no picture is the input (``source``, standard input included)."""
    path = options["diagram"]
    if path is None:
        if options["values"]:
            raise ParameterError("--values shows numbers in a picture; add --diagram PATH")
        return
    pictures.diagram_format(path.replace(INDEX, "1"))
    if options["values"] and options["layers"]:
        raise ParameterError(
            "--values needs a kernel's numbers, which --layer chains do not have; draw one "
            "layer with -k SPEC instead"
        )
    for index in range(1, max(1, len(options["layers"])) + 1):
        pictures.check_diagram_path(path.replace(INDEX, str(index)), inputs=inputs_of(source))


def draw_layer(
    result: ShapeResult,
    path: str,
    *,
    padding: object,
    source: str,
    image: Image | None,
    kernel: kernels.Filter | None,
    options: dict,
) -> None:
    """The picture of one convolution into ``path`` (``--values``: with its numbers)."""
    geo = result.geometry
    numbers = None
    if options["values"]:
        numbers = _numbers(geo, padding, image, kernel, options)
    d = diagram.build_diagram(geo, numbers=numbers, padding_spec=padding)
    files = kernel.files if kernel is not None else ()
    _write([(d, path.replace(INDEX, "1"))], inputs=inputs_of(source), kernel_files=files)


def draw_chain(chain: ChainResult, path: str, *, source: str) -> None:
    """One picture per layer: ``{index}`` in ``path`` becomes the layer's number."""
    if INDEX not in path and len(chain.rows) > 1:
        stem, ext = os.path.splitext(path)
        raise ParameterError(
            f"--diagram {path!r}: a chain of {len(chain.rows)} layers draws one picture per "
            f"layer; put {INDEX} in the name, e.g. {stem}-{INDEX}{ext}"
        )
    drawn = []
    for index, layer, result in chain.rows:
        try:
            d = diagram.build_diagram(result.geometry, padding_spec=layer.padding)
        except ParameterError as err:
            raise ParameterError(f"layer {index}: {err}") from None
        drawn.append((d, path.replace(INDEX, str(index))))
    _write(drawn, inputs=inputs_of(source), kernel_files=())


def inputs_of(source: str) -> list[str]:
    """The files ``shape`` reads for ``source``: an image (``-``: standard input), or none
    for a shape written out."""
    return [source] if source == "-" or os.path.exists(source) else []


def _write(drawn: list, *, inputs: list[str], kernel_files) -> None:
    # Every picture is drawn and every path checked before the first is written.
    for _, path in drawn:
        pictures.check_diagram_path(path, inputs=inputs, kernels=kernel_files)
    for d, path in drawn:
        frames = pictures.write_diagram(d, path)
        total = d.output_shape[0] * d.output_shape[1]
        if 1 < frames < total:
            console.warn(
                f"{shown_name(path)}: the first {frames} of {total} output positions are drawn "
                f"(an animation holds at most {diagram.MAX_FRAMES} frames, fewer when they "
                f"are large)"
            )


def _numbers(
    geo: ConvGeometry,
    padding: object,
    image: Image | None,
    kernel: kernels.Filter | None,
    options: dict,
) -> diagram.Numbers:
    """Channel 0's numbers: the input's pixels (or 0, 1, 2, ... for a shape), the kernel
    as ``apply``/``upsample`` would use it, the output computed by the library."""
    if kernel is None:
        raise ParameterError(
            f"--values needs the kernel's numbers; -k {options['kernel']} is a shape: give a "
            f'kernel spec or file instead (box:3, "1 0 1; 0 1 0; 1 0 1", weights.npy)'
        )
    channels = geo.input_shape[1]
    per_group = channels // geo.groups
    if per_group != 1:
        raise ParameterError(
            f"--values draws one channel, but each output here sums {per_group} input "
            f"channels (weight {geo.weight_shape}, groups {geo.groups}); give a 1-channel "
            f"input or a per-channel (2-D) kernel"
        )
    h, w = geo.input_shape[2:]
    x = image.pixels[0, 0] if image is not None else np.arange(h * w, dtype=np.float64)
    step = pipeline.Step(
        kernel,
        stride=geo.stride,
        padding=padding,
        dilation=geo.dilation,
        groups=options["groups"],
        flip=bool(kernel.options.get("flip", False)),
        normalize=bool(kernel.options.get("normalize", False)),
        transpose=geo.transpose,
        output_padding=geo.output_padding,
    )
    weight, _, bias = pipeline.prepare(step, channels)
    bias0 = float(bias[0]) if bias is not None else 0.0
    return diagram.numbers_for(geo, np.reshape(x, (h, w)), weight[0, 0], bias0, padding=padding)
