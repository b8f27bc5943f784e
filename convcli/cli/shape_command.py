"""The ``shape`` command as click declares it; :mod:`convcli.cli.run_shape` answers it."""

from __future__ import annotations

import click


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
    from convcli.cli.run_shape import run_shape

    run_shape(ctx, options)
