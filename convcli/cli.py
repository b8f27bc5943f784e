"""The convcli command line: parses options, calls the library, reports errors.

Library errors (:class:`convcli.errors.ConvcliError`) become one ``Error: ...``
line with their exit code: 2 for usage (bad option, kernel or shape), 1 for an
input or output that could not be processed. NumPy and Pillow are imported
inside the commands so that ``convcli --help`` starts quickly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import click

from convcli import __version__
from convcli.errors import ConvcliError
from convcli.outputs import FORMAT_NAMES

# padding.PAD_MODES with the default first; a literal, since padding.py imports NumPy
# and --help should not (tests/test_commands.py keeps the two the same).
PAD_MODES = ("reflect", "zeros", "replicate", "circular", "symmetric")


class CommandError(click.ClickException):
    """A library error on its way out: one ``Error: ...`` line and its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(err: ConvcliError) -> CommandError:
    return CommandError(str(err), err.exit_code)


class ConvcliGroup(click.Group):
    """The command group: every error is one ``Error: ...`` line, and a reader of
    stdout going away (``| head``) ends the command quietly.

    Click prints usage errors as three lines (usage, hint, error) and reports a
    closed pipe as exit 1; here a usage error is one line that names the help to
    read (exit 2), and a closed pipe is 141, as for any program stopped by SIGPIPE.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            where = (err.ctx or ctx).command_path
            raise CommandError(f"{err.format_message()} (see '{where} --help')", 2) from None
        except BrokenPipeError:
            _silence_stdout()
            raise click.exceptions.Exit(141) from None


@click.group(
    cls=ConvcliGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 96},
)
@click.version_option(__version__, "-V", "--version", prog_name="convcli")
def cli() -> None:
    """Image convolution from the shell, with PyTorch's semantics and numbers.

    Images load as (N,C,H,W) float32 arrays in [0,1]; kernels come from names,
    inline matrices or filter files; results are written as images or .npy.
    Kernels are applied as cross-correlation (not flipped), like PyTorch,
    libvips and ImageMagick's -convolve; use --flip for true convolution.

    \b
    Examples:
      convcli apply photo.png -k gaussian:9 -o blurred.png
      mkdir -p edges && convcli apply *.jpg -k sobel-x --range abs -o edges/
      cat a.png | convcli apply - -k sharpen -o - | convcli upsample - -o big.png
      convcli shape 1,3,224,224 -k 7 --stride 2 --padding 3
      convcli kernels gaussian:5

    Exit status: 0 success, 1 an input or output failed, 2 usage error, 130 interrupted,
    141 the reader of stdout went away (e.g. | head).
    """


def _options(*options: Callable) -> Callable:
    """Bundle click options into one decorator (they show in the order given)."""

    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


io_options = _options(
    click.argument("inputs", nargs=-1, required=True, metavar="INPUT..."),
    click.option(
        "-o",
        "--output",
        required=True,
        help="Output file, '-' for stdout, a directory ending in '/', or a "
        "template with {stem} {name} {ext} {index} {frame}. The directory must exist.",
    ),
)

conv_options = _options(
    click.option("--stride", metavar="S|H,W", help="Step between windows."),
    click.option(
        "--padding",
        metavar="SPEC",
        help="same, valid, N, H,W or T,B,L,R.  [default: same]",
    ),
    click.option("--dilation", metavar="D|H,W", help="Spacing between kernel taps."),
    click.option("--groups", type=click.IntRange(1), help="Channel groups of a 4-D weight."),
    click.option(
        "--bias",
        metavar="B[,B...]",
        help="Added after filtering, on the 0..1 pixel scale (0.251 = 64/255 adds 64 to 8-bit "
        "pixels); one value, or one per output channel.",
    ),
    click.option(
        "--flip", is_flag=True, default=None, help="Rotate kernels 180 degrees: true convolution."
    ),
    click.option(
        "--normalize",
        is_flag=True,
        default=None,
        help="Divide each kernel by its sum (an error for zero-sum kernels).",
    ),
)

output_options = _options(
    click.option(
        "--range",
        "value_range",
        type=click.Choice(["clip", "abs", "normalize"]),
        help="How values outside [0,1] become pixels: clip, abs (then clip), or normalize "
        "(min..max to 0..1).  [default: clip; .npy keeps raw values]",
    ),
    click.option(
        "--depth",
        type=click.Choice(["8", "16"]),
        help="Bits per channel of the output (default: the input's).",
    ),
    click.option(
        "--format",
        "fmt",
        type=click.Choice(list(FORMAT_NAMES), case_sensitive=False),
        help="Output format (default: from the extension; PNG for '-'); an extension it "
        "disagrees with (--format jpeg -o x.png) is refused.",
    ),
    click.option(
        "--quality",
        type=click.IntRange(1, 100),
        default=95,
        show_default=True,
        help="JPEG and WebP quality (100 is best).",
    ),
    click.option(
        "--compress-level",
        type=click.IntRange(0, 9),
        default=1,
        show_default=True,
        help="Deflate level of PNG and TIFF output (1 is fast, 9 is small; 0 leaves TIFF "
        "uncompressed).",
    ),
    click.option(
        "--report",
        "report_path",
        metavar="PATH|-",
        help="Write a JSON Lines record per image to PATH or stdout.",
    ),
    click.option("-q", "--quiet", is_flag=True, help="No per-image lines on stderr."),
    click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails."),
    click.option(
        "--max-pixels",
        type=click.IntRange(1),
        metavar="N",
        help="Refuse images with more pixels (default 178956970).",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1),
        metavar="N",
        help="Worker threads (default: CONVCLI_THREADS or all cores).",
    ),
)


@cli.command(short_help="Filter images with kernels (cross-correlation, as PyTorch).")
@io_options
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="Kernel name, inline matrix or filter file; repeat to apply in order.",
)
@conv_options
@click.option(
    "--pad-mode",
    type=click.Choice(PAD_MODES),
    help="How borders are padded.  [default: reflect; symmetric for an image too small to "
    "mirror that far]",
)
@output_options
@click.pass_context
def apply(ctx: click.Context, **options) -> None:
    """Filter images with one or more kernels (cross-correlation, as in PyTorch).

    A 2-D kernel filters every channel on its own (an RGB blur stays RGB); a
    3-D (C,Hf,Wf) weight makes one channel from all channels; a 4-D
    (F,C/groups,Hf,Wf) weight is a full convolution with F output channels.
    Options in a filter file apply unless given here. Padding "same" keeps
    the size; an even kernel's extra padding goes to the bottom/right.

    \b
    Examples:
      convcli apply photo.png -k gaussian:9 -o blur.png
      convcli apply photo.png -k sobel-x --range abs -o edges.png
      convcli apply photo.png -k "0 -1 0; -1 5 -1; 0 -1 0" -o sharp.png
      mkdir -p out && convcli apply scans/*.tif -k filters/unsharp.json \\
        -o out/{stem}-sharp.png
    """
    from convcli.commands import run_images

    run_images(ctx, options, transpose=False)


@cli.command(short_help="Enlarge images by transposed convolution.")
@io_options
@click.option(
    "--factor",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Upsampling factor (the default stride).",
)
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    metavar="SPEC",
    help="bilinear (default), nearest, or any kernel spec or filter file.",
)
@conv_options
@click.option(
    "--output-padding",
    metavar="P|H,W",
    help="Extra rows/columns at the bottom/right (smaller than the stride).",
)
@click.option(
    "--pad-mode",
    type=click.Choice(["replicate", "zeros", "reflect", "circular", "symmetric"]),
    help="Borders: the input is padded this way first (replicate: a flat image stays "
    "flat), or not at all with zeros (exactly torch's conv_transpose2d / "
    "nn.ConvTranspose2d, borders included).  [default: replicate]",
)
@output_options
@click.pass_context
def upsample(ctx: click.Context, **options) -> None:
    """Enlarge images by transposed convolution (fractionally strided).

    With the defaults (bilinear, stride = factor, padding same) the output is
    exactly factor times the input and matches half-pixel bilinear
    interpolation (PyTorch's align_corners=False); "nearest" repeats pixels.
    Borders are edge-replicated first, so a constant image stays constant
    (--pad-mode zeros gives PyTorch's ConvTranspose2d exactly, borders included).

    \b
    Examples:
      convcli upsample small.png -o big.png
      convcli upsample small.png --factor 3 -k nearest -o pixelated.png
      convcli apply a.png -k box:3 -o - | convcli upsample - -o b.png
    """
    from convcli.commands import run_images

    run_images(ctx, options, transpose=True)


@cli.command(short_help="Output shape of a convolution, with the formula.")
@click.argument("input_arg", required=False, metavar="[INPUT]")
@click.option(
    "--input",
    "input_opt",
    metavar="SHAPE|IMAGE",
    help="N,C,H,W, C,H,W, H,W, HxW, or an image (read from its header).",
)
@click.option(
    "-k",
    "--kernel",
    metavar="SPEC|SHAPE",
    help="Kernel spec or file, or a shape: K, KhxKw, C,Kh,Kw, F,C,Kh,Kw.",
)
@click.option("--stride", metavar="S|H,W", default="1", show_default=True)
@click.option(
    "--padding",
    metavar="SPEC",
    default="0",
    show_default=True,
    help="same, valid, N, H,W or T,B,L,R.",
)
@click.option("--dilation", metavar="D|H,W", default="1", show_default=True)
@click.option("--groups", type=click.IntRange(1), help="Channel groups.")
@click.option("--filters", type=click.IntRange(1), help="Output channels of a 2-D kernel.")
@click.option("--transpose", is_flag=True, help="Transposed convolution.")
@click.option("--output-padding", metavar="P|H,W", default="0", show_default=True)
@click.option("--target", metavar="H,W", help="Solve for the padding that gives this size.")
@click.option(
    "--layer",
    "layers",
    multiple=True,
    metavar="k=..,s=..,p=..",
    help="A layer of a chain (repeatable): keys k s p d g f t op.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def shape(ctx: click.Context, **options) -> None:
    """Output shape of a convolution, with the formula and its numbers.

    Warns when rows/columns are never read (the stride does not fit), lists
    the valid output_padding values of a transposed convolution, solves
    --target sizes, and runs chains of --layer.

    \b
    Examples:
      convcli shape 10,3,32,32 -k 1,3,5,5 --padding 2
      convcli shape photo.png -k gaussian:9 --stride 2 --padding same
      convcli shape 2x2 -k 3 --stride 2 --padding 1 --transpose
      convcli shape 32x32 -k 3 --stride 2 --target 16,16
      convcli shape --input 1,3,224,224 --layer k=7,s=2,p=3,f=64 --layer k=3,s=2,p=1
    """
    from convcli.shape_command import run_shape

    run_shape(ctx, options)


@cli.command(short_help="List the named kernels, or show one kernel or file.")
@click.argument("spec", required=False)
def kernels(spec: str | None) -> None:
    """List the named kernels, or show one kernel or filter file.

    \b
    Examples:
      convcli kernels
      convcli kernels gaussian:5,1.2
      convcli kernels filters/sobel-xy.json
    """
    from convcli.describe import describe_filter
    from convcli.kernels import list_kernels, load_filter

    try:
        if spec is None:
            rows = list_kernels()
            width = max(len(name) for name, _ in rows)
            for name, description in rows:
                click.echo(f"{name:<{width}}  {description}")
            return
        click.echo(describe_filter(load_filter(spec)))
    except ConvcliError as err:
        raise fail(err) from None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: exit 130 on Ctrl-C, quiet on a closed pipe."""
    try:
        code = cli.main(args=argv, prog_name="convcli", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("\nAborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("\nAborted.", err=True)
        sys.exit(130)
    sys.exit(code or 0)


def _silence_stdout() -> None:
    # The reader went away (e.g. `| head`): point stdout at /dev/null so the
    # interpreter's final flush does not raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
