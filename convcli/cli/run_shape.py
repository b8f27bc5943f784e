"""What ``convcli shape`` does once click has parsed it: the input and kernel shapes from
text, a filter file or an image header, then :mod:`convcli.shapes.calculator`'s answer as text
or JSON on stdout.
"""

from __future__ import annotations

import json
import os
import re

import click

from convcli import kernels
from convcli.cli import console, run_diagram
from convcli.cli import options as options_text
from convcli.cli.console import require_stdout
from convcli.cli.failures import fail
from convcli.errors import ConvcliError, ParameterError, shown_name
from convcli.images import reading
from convcli.images.limits import MAX_FRAMES
from convcli.images.output_paths import check_output_path
from convcli.shapes import calculator, layers

_SHAPE = re.compile(r"^\s*\d+(\s*[,x×]\s*\d+)*\s*$")


def run_shape(ctx: click.Context, options: dict) -> None:
    require_stdout("the shape report")  # before an image header is read for nothing
    try:
        text = _shape_text(ctx, options)
    except ConvcliError as err:
        raise fail(err) from None
    click.echo(text)


def _shape_text(ctx: click.Context, options: dict) -> str:
    given = [v for v in (options["input_arg"], options["input_opt"]) if v]
    if len(given) != 1:
        raise ParameterError(
            "give the input once: a shape like 1,3,224,224 or 224x224, or an image file"
        )
    source = given[0]
    run_diagram.check_options(options, source=source)
    # The answer goes to stdout: never appended to the input it describes (>> in.png).
    check_output_path("-", run_diagram.inputs_of(source), what="the shape text")
    image = None
    max_frames = options["max_frames"] or MAX_FRAMES
    if _SHAPE.match(source):
        input_shape = calculator.parse_shape(source)
    elif (source == "-" or os.path.exists(source)) and options["values"]:
        image = reading.read_image(source, max_frames=max_frames)  # --values shows its pixels
        input_shape = image.shape
    elif source == "-" or os.path.exists(source):
        input_shape = reading.read_image_shape(source, max_frames=max_frames)
    else:
        raise ParameterError(
            f"input {source!r} is neither a shape (N,C,H,W, C,H,W, H,W or HxW, e.g. "
            f"1,3,224,224 or 224x224) nor an existing image file"
        )
    as_json = options["as_json"]
    if options["layers"] and options["kernel"]:
        raise ParameterError("give -k for one layer or --layer for a chain, not both")
    if options["layers"]:
        result = layers.chain(
            input_shape,
            [layers.parse_layer(t) for t in options["layers"]],
            padding_mode=options["pad_mode"] or "zeros",
        )
        if options["diagram"]:
            run_diagram.draw_chain(result, options["diagram"], source=source)
        return json.dumps(result.as_dict()) if as_json else result.text()
    if not options["kernel"]:
        raise ParameterError("give a kernel (-k 3x3, -k F,C,Kh,Kw or a spec) or --layer")
    spec = options["kernel"]
    f = None
    bank = 0
    if _SHAPE.match(spec):
        kernel = calculator.parse_ints(spec, "kernel")
        if len(kernel) == 1:
            # In apply, -k 3 is the 1x1 kernel [3]; a size here must not look the same.
            k = kernel[0]
            raise ParameterError(
                f"-k {spec.strip()}: write the kernel size as -k {k}x{k}; a bare number is "
                f"refused here because convcli apply reads -k {spec.strip()} as a 1x1 kernel "
                f"of value {spec.strip()} (its shape is -k 1x1)"
            )
    else:
        f = kernels.load_filter(spec)
        check_output_path("-", [], what="the shape text", kernels=f.files)
        kernel = f.weight.shape
        bank, combine = len(f.bank), f.combine
        for warning in f.warnings:
            console.warn(warning)
        # A filter file's stride, padding, dilation, groups, pad_mode apply unless given here.
        for key, value in f.options.items():
            if key == "pad_mode" and options["transpose"]:
                continue  # upsample's: it pads the input first, the geometry stays the same
            if key in ("groups", "pad_mode") and not options_text.given(ctx, key):
                options[key] = value
            elif key in ("stride", "padding", "dilation") and not options_text.given(ctx, key):
                options[key] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    transpose = options["transpose"]
    weight, groups = calculator.weight_shape_for(
        kernel,
        input_shape[1],
        groups=options["groups"],
        filters=options["filters"],
        transpose=transpose,
    )
    stride = options_text.pair_or_int(options["stride"], "--stride")
    dilation = options_text.pair_or_int(options["dilation"], "--dilation")
    output_padding = options_text.pair_or_int(options["output_padding"], "--output-padding")
    if not transpose and output_padding not in (0, (0, 0)):
        raise ParameterError(
            f"--output-padding {options['output_padding']} applies to --transpose only (extra "
            f"rows/columns of a transposed convolution); add --transpose or drop it"
        )
    padding = options_text.padding_spec(options["padding"])
    prefix = ""
    if bank:
        prefix = (
            f"{shown_name(spec)}: {bank} kernels of this shape, their responses combined by "
            f"{combine}\n"
        )
    if options["target"]:
        target = calculator.parse_ints(options["target"], "--target")
        target = (target[0], target[-1])
        padding, output_padding = calculator.solve_target(
            input_shape[2:],
            weight[2:],
            target_hw=target,
            stride=stride,
            dilation=dilation,
            transpose=transpose,
        )
        prefix += (
            f"padding {padding} (top, bottom, left, right)"
            + (f", output_padding {output_padding}" if transpose else "")
            + f" gives {target[0]}x{target[1]}\n"
        )
    result = calculator.calculate(
        input_shape,
        weight,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        transpose=transpose,
        output_padding=output_padding,
        padding_mode=options["pad_mode"] or "zeros",
    )
    if options["diagram"]:
        run_diagram.draw_layer(
            result,
            options["diagram"],
            padding=padding,
            source=source,
            image=image,
            kernel=f,
            options=options,
        )
    if as_json:
        data = result.as_dict()
        if options["target"]:
            data["solution"] = {"padding": list(padding), "output_padding": list(output_padding)}
        if bank:
            data.update(bank=bank, combine=combine)
        return json.dumps(data)
    return prefix + result.text()
