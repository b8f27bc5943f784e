"""What the ``apply``, ``upsample`` and ``shape`` commands do once click has parsed them.

This is the command line's own layer (it prints and sets exit codes); the work
itself is in the library modules it calls.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import click
import numpy as np
from click.core import ParameterSource

from convcli import batch, imageio, kernels, pipeline, report, shapecalc
from convcli.cli import fail
from convcli.errors import ConvcliError, ParameterError, ResourceError


def _pair_or_int(text: str | None, name: str):
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


def _padding(text: str | None):
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


def _floats(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of numbers", param_hint=name) from None


DEFAULTS = {
    "stride": 1,
    "padding": "same",
    "dilation": 1,
    "groups": None,
    "pad_mode": None,  # reflect, or symmetric for images too small to mirror
    "flip": False,
    "normalize": False,
}


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )


def _steps(ctx: click.Context, options: dict, *, transpose: bool) -> list[pipeline.Step]:
    """Kernels with their options: the command line over the filter file over defaults."""
    specs = list(options["kernels"])
    factor = options.get("factor")
    if transpose:
        specs = specs or ["bilinear"]
        specs = [
            f"{s}:{factor}" if s.strip().lower() in ("bilinear", "nearest") else s for s in specs
        ]
    parsed = {
        "stride": _pair_or_int(options["stride"], "--stride"),
        "padding": _padding(options["padding"]),
        "dilation": _pair_or_int(options["dilation"], "--dilation"),
        "groups": options["groups"],
        "pad_mode": options.get("pad_mode"),
        "flip": options["flip"],
        "normalize": options["normalize"],
    }
    defaults = dict(DEFAULTS, stride=factor) if transpose else DEFAULTS
    bias = _floats(options["bias"], "--bias")
    output_padding = _pair_or_int(options.get("output_padding"), "--output-padding") or 0
    steps = []
    for spec in specs:
        f = kernels.load_filter(spec)
        values = {}
        for key, default in defaults.items():
            if parsed[key] is not None and _given(ctx, key):
                values[key] = parsed[key]
            else:
                values[key] = f.options.get(key, default)
        steps.append(
            pipeline.Step(
                f, bias=bias, output_padding=output_padding, transpose=transpose, **values
            )
        )
    return steps


@dataclass
class Loaded:
    path: str
    target: str
    image: imageio.Image

    @property
    def batch_key(self) -> tuple:
        """Images with equal keys can run as one (N, C, H, W) batch."""
        return self.image.pixels.shape[1:], self.image.has_alpha, self.image.depth


_BATCH_PIXELS = 1 << 27  # values per batch: keeps a batch's memory in hand


def run_images(ctx: click.Context, options: dict, *, transpose: bool) -> None:
    """Read each input (the next one while this one is filtered), filter consecutive
    same-shaped images as one batch, write and report; a failing input does not
    stop the others unless --fail-fast."""
    if options["threads"]:
        os.environ["CONVCLI_THREADS"] = str(options["threads"])
    inputs = list(options["inputs"])
    try:
        steps = _steps(ctx, options, transpose=transpose)
        targets = batch.plan_outputs(inputs, options["output"], fmt=options["fmt"])
        if options["report_path"] == "-" and options["output"] == "-":
            raise ParameterError(
                "--report - and -o - would both write to stdout; send one to a file"
            )
        if options["output"] == "-" and sys.stdout.isatty():
            raise ParameterError(
                "-o - writes image data to standard output, which is a terminal here; "
                "redirect it (> out.png, | another command) or give -o FILE"
            )
    except ConvcliError as err:
        raise fail(err) from None

    worst = 0
    max_pixels = options["max_pixels"] or imageio.DEFAULT_MAX_PIXELS
    report_stream = _open_report(options["report_path"])

    def failed(err: ConvcliError, what: str) -> None:
        nonlocal worst
        status.error(f"Error: {err}" if what in str(err) else f"Error: {what}: {err}")
        worst = max(worst, err.exit_code)
        if options["fail_fast"]:
            ctx.exit(worst)

    def run(group: list[Loaded]) -> None:
        try:
            _run_group(group, steps, options, report_stream, status)
        except ConvcliError as err:
            for item in group:
                failed(err, item.path)
        status.update(len(group))

    try:
        with Status(len(inputs), options["quiet"]) as status:
            group: list[Loaded] = []
            for path, target, outcome in _read_ahead(inputs, targets, max_pixels):
                if isinstance(outcome, ConvcliError):
                    if group:  # keep messages in input order
                        run(group)
                        group = []
                    failed(outcome, path)
                    status.update(1)
                    continue
                status.warn(outcome.warnings)
                item = Loaded(path, target, outcome)
                size = sum(i.image.pixels.size for i in group) + outcome.pixels.size
                if group and (item.batch_key != group[0].batch_key or size > _BATCH_PIXELS):
                    run(group)
                    group = []
                group.append(item)
            if group:
                run(group)
    finally:
        if report_stream not in (None, sys.stdout):
            report_stream.close()
    if worst:
        ctx.exit(worst)


def _read_ahead(inputs: list[str], targets: list[str], max_pixels: int):
    """Yield (path, target, Image or the ConvcliError reading it), in input order,
    decoding the next input on a background thread while the caller works on this one."""

    def read(path: str) -> imageio.Image | ConvcliError:
        try:
            return imageio.read_image(path, max_pixels=max_pixels)
        except ConvcliError as err:
            return err

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="convcli-read") as reader:

        def start(index: int):
            # Standard input is read in the foreground: a blocked read in a worker
            # thread would keep Ctrl-C from ending the process.
            if index >= len(inputs) or inputs[index] == "-":
                return None
            return reader.submit(read, inputs[index])

        pending = start(0)
        for index, (path, target) in enumerate(zip(inputs, targets, strict=True)):
            outcome = read(path) if pending is None else pending.result()
            pending = start(index + 1)
            yield path, target, outcome


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _run_group(group: list[Loaded], steps, options, report_stream, status: Status) -> None:
    x = (
        np.concatenate([item.image.pixels for item in group])
        if len(group) > 1
        else (group[0].image.pixels)
    )
    first = group[0].image
    needed = pipeline.estimate_bytes(x.shape, steps)
    available = _available_memory()
    if available is not None and needed > available:
        raise ResourceError(
            f"this job needs about {needed / 2**30:.1f} GiB and {available / 2**30:.1f} GiB "
            f"is available; use fewer or smaller images, or a smaller output (--stride)"
        )
    start = time.perf_counter()
    result = pipeline.apply_steps(x, steps, has_alpha=first.has_alpha)
    seconds = (time.perf_counter() - start) / len(group)
    status.warn(result.warnings)
    offset = 0
    for item in group:
        frames = item.image.pixels.shape[0]
        sl = slice(offset, offset + frames)
        offset += frames
        fmt = _format_of(item.target, options)
        # .npy keeps raw values unless a --range was asked for.
        value_range = options["value_range"] or (None if fmt == "NPY" else "clip")
        pixels, clipped_low, clipped_high = pipeline.map_range(
            result.values[sl], value_range, bounds=(result.minimum[sl], result.maximum[sl])
        )
        depth = int(options["depth"]) if options["depth"] else (16 if first.depth >= 16 else 8)
        if depth == 16 and first.depth == 32 and not options["depth"]:
            depth = 16 if fmt in ("PNG", "TIFF") else 8
        written = _write(pixels, item.target, depth, options, status)
        record = report.ImageReport(
            item.path,
            written,
            item.image.pixels.shape,
            pixels.shape,
            list(zip(result.weight_shapes, result.geometries, strict=True)),
            float(result.minimum[sl].min()),
            float(result.maximum[sl].max()),
            int(clipped_low.sum()),
            int(clipped_high.sum()),
            seconds,
        )
        status.note(report.text_line(record))
        if report_stream is not None:
            report_stream.write(report.json_record(record) + "\n")
            report_stream.flush()


def _format_of(target: str, options) -> str:
    from convcli.outputs import output_format_for

    return output_format_for(target.replace("{frame}", "0"), options["fmt"])


def _write(pixels: np.ndarray, target: str, depth: int, options, status: Status) -> str:
    """Write one image's frames (one file each when the target names {frame})."""
    kwargs = {
        "depth": depth,
        "fmt": options["fmt"],
        "compress_level": options["compress_level"],
        "quality": options["quality"],
    }
    if "{frame}" in target:
        paths = [batch.frame_path(target, n) for n in range(len(pixels))]
        for n, path in enumerate(paths):
            status.warn(imageio.write_image(pixels[n], path, **kwargs))
        return paths[0] if len(paths) == 1 else target
    status.warn(imageio.write_image(pixels, target, **kwargs))
    return target


def _open_report(path: str | None):
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by run_images
    except OSError as err:
        raise click.ClickException(f"--report {path}: cannot write ({err.strerror})") from None


class Status:
    """stderr: error and warning lines, per-image lines, and a progress bar.

    The bar shows only for a batch on a terminal; lines printed while it shows
    first clear it, so each message keeps a line of its own. ``--quiet`` keeps
    warnings and per-image lines back, never errors.
    """

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        show = not quiet and total > 1 and sys.stderr.isatty()
        self.bar = (
            click.progressbar(length=total, label="filtering", file=sys.stderr) if show else None
        )

    def __enter__(self) -> Status:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def error(self, text: str) -> None:
        click.echo(("\r\x1b[K" if self.bar is not None else "") + text, err=True)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.error(text)

    def warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.note(f"Warning: {warning}")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)


# convcli shape ------------------------------------------------------------------------------

_SHAPE = re.compile(r"^\s*\d+(\s*[,x×]\s*\d+)*\s*$")


def run_shape(ctx: click.Context, options: dict) -> None:
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
    if _SHAPE.match(source):
        input_shape = shapecalc.parse_shape(source)
    else:
        input_shape = imageio.read_image_shape(source)
    as_json = options["as_json"]
    if options["layers"] and options["kernel"]:
        raise ParameterError("give -k for one layer or --layer for a chain, not both")
    if options["layers"]:
        result = shapecalc.chain(input_shape, [shapecalc.parse_layer(t) for t in options["layers"]])
        return json.dumps(result.as_dict()) if as_json else result.text()
    if not options["kernel"]:
        raise ParameterError("give a kernel (-k 3, -k 5x5, -k F,C,Kh,Kw or a spec) or --layer")
    spec = options["kernel"]
    if _SHAPE.match(spec):
        kernel = shapecalc.parse_ints(spec, "kernel")
    else:
        f = kernels.load_filter(spec)
        kernel = f.weight.shape
        # A filter file's stride, padding, dilation and groups apply unless given here.
        for key, value in f.options.items():
            if key == "groups" and not _given(ctx, key):
                options[key] = value
            elif key in ("stride", "padding", "dilation") and not _given(ctx, key):
                options[key] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    transpose = options["transpose"]
    weight, groups = shapecalc.weight_shape_for(
        kernel,
        input_shape[1],
        groups=options["groups"],
        filters=options["filters"],
        transpose=transpose,
    )
    stride = _pair_or_int(options["stride"], "--stride")
    dilation = _pair_or_int(options["dilation"], "--dilation")
    output_padding = _pair_or_int(options["output_padding"], "--output-padding")
    padding = _padding(options["padding"])
    prefix = ""
    if options["target"]:
        target = shapecalc.parse_ints(options["target"], "--target")
        target = (target[0], target[-1])
        padding, output_padding = shapecalc.solve_target(
            input_shape[2:],
            weight[2:],
            target_hw=target,
            stride=stride,
            dilation=dilation,
            transpose=transpose,
        )
        prefix = (
            f"padding {padding} (top, bottom, left, right)"
            + (f", output_padding {output_padding}" if transpose else "")
            + f" gives {target[0]}x{target[1]}\n"
        )
    result = shapecalc.calculate(
        input_shape,
        weight,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        transpose=transpose,
        output_padding=output_padding,
    )
    if as_json:
        data = result.as_dict()
        if options["target"]:
            data["solution"] = {"padding": list(padding), "output_padding": list(output_padding)}
        return json.dumps(data)
    return prefix + result.text()
