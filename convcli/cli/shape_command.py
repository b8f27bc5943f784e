"""The ``shape`` command as click declares it; :mod:`convcli.cli.run_shape` answers it."""

from __future__ import annotations

import click

from convcli.cli import console

# padding.PAD_MODES, PyTorch's default first: a literal, since padding.py imports NumPy.
PAD_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


@click.command(short_help="Output shape of a convolution, with the formula.")
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
    help="Kernel spec or file, or a shape: KhxKw (3x3), C,Kh,Kw or F,C,Kh,Kw. A bare "
    "number is refused: apply reads -k 3 as a 1x1 kernel of value 3.",
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
    help="A layer of a chain (repeatable): keys k s p d g f op, and t=1 (transposed) or t=0; "
    "each key once.",
)
@click.option(
    "--pad-mode",
    type=click.Choice(PAD_MODES),
    help="How borders are padded (as in apply; checked, and drawn by --diagram).  "
    "[default: zeros, as PyTorch's Conv2d]",
)
@click.option(
    "--diagram",
    metavar="PATH",
    help="Draw it: .svg a picture; .gif, .png, .apng an animation, one frame per output. "
    "{index} names one per --layer.",
)
@click.option(
    "--values",
    is_flag=True,
    help="With --diagram: the numbers and each output's sum (an image's or .npy's pixels, "
    "or 0, 1, 2, ... for a shape).",
)
@click.option(
    "--max-frames",
    type=click.IntRange(1),
    metavar="N",
    help="Refuse an input image with more frames or pages (default 10000), as apply does.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("-q", "--quiet", is_flag=True, help=console.QUIET_HELP.format(more=""))
@click.pass_context
def shape(ctx: click.Context, **options) -> None:
    """Output shape of a convolution, with the formula and its numbers.

    Warns when rows/columns are never read (the stride does not fit), lists
    the valid output_padding values of a transposed convolution, solves
    --target sizes, and runs chains of --layer. --diagram draws the convolution
    (input, padding, kernel window, output, and the formulas) as Dumoulin & Visin's
    conv arithmetic pictures do, for these parameters.

    \b
    Examples:
      convcli shape 10,3,32,32 -k 1,3,5,5 --padding 2
      convcli shape photo.png -k gaussian:9 --stride 2 --padding same
      convcli shape 2x2 -k 3x3 --stride 2 --padding 1 --transpose
      convcli shape 32x32 -k 3x3 --stride 2 --target 16,16
      convcli shape --input 1,3,224,224 --layer k=7,s=2,p=3,f=64 --layer k=3,s=2,p=1
      convcli shape 5x5 -k 3x3 --stride 2 --padding 1 --diagram conv.gif
      convcli shape 4x4 -k "1 0 1; 0 1 0; 1 0 1" --values --diagram sum.svg
    """
    from convcli.cli.run_shape import run_shape

    run_shape(ctx, options)
