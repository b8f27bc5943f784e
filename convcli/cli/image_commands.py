"""The ``apply`` and ``upsample`` commands as click declares them: their options and help.
What they do is in :mod:`convcli.cli.run_images`, imported when one runs, so that
``--help`` loads neither NumPy nor Pillow.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from convcli.cli import console
from convcli.images.output_paths import FORMAT_NAMES

# padding.PAD_MODES with the default first; a literal, since padding.py imports NumPy
# and --help should not (tests/cli/test_commands.py keeps the two the same).
PAD_MODES = ("reflect", "zeros", "replicate", "circular", "symmetric")


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
        "(the colours' finite min..max to 0..1, alpha kept; +-Inf as 1 and 0).  [default: "
        "clip; .npy keeps raw "
        "values]",
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
        "--background",
        metavar="COLOR",
        help="Flatten transparency over COLOR (a CSS name or #rrggbb; gray images over its "
        "luma).  [default: white, for formats without alpha (JPEG, BMP, PNM); others keep "
        "alpha]",
    ),
    click.option(
        "--strip",
        is_flag=True,
        help="Write no metadata: the input's ICC profile and EXIF are kept otherwise.",
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
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help=console.QUIET_HELP.format(more=", per-image lines or progress bar"),
    ),
    click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails."),
    click.option(
        "--max-pixels",
        type=click.IntRange(1),
        metavar="N",
        help="Refuse images with more pixels (default 178956970) where a decoder must hold "
        "them whole; TIFF, Zarr and .npy are read by region and filtered in blocks instead.",
    ),
    click.option(
        "--max-frames",
        type=click.IntRange(1),
        metavar="N",
        help="Refuse inputs with more frames (default 10000): GIF, APNG and WebP frames, MPO "
        "pictures, TIFF pages, the first axis of .npy and Zarr; counted as they are read.",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1),
        metavar="N",
        help="Worker threads (default: CONVCLI_THREADS or all cores).",
    ),
    click.option(
        "--chunks",
        default="auto",
        metavar="auto|N|H,W",
        help="Filter in output blocks of N or H,W pixels, never holding the image whole. "
        "auto: in memory when the job fits, else in blocks of about 2048x2048 (inputs read "
        "by region: TIFF, Zarr, .npy; other formats are decoded whole first). Blocks run "
        "on Dask: pip install 'convcli[dask]'.  [default: auto]",
    ),
    click.option(
        "--scheduler",
        envvar="CONVCLI_SCHEDULER",
        metavar="SPEC",
        help="Which of Dask's schedulers runs blocks and files: threads (this process), "
        "processes (local worker processes), local:N (a dask.distributed cluster of N "
        "workers here) or tcp://HOST:PORT (a running one; its workers need convcli[dask] "
        "and the same paths).  [default: threads; env CONVCLI_SCHEDULER]",
    ),
    click.option(
        "--tile",
        type=click.IntRange(16),
        metavar="N",
        help="Write TIFF in N x N tiles (a multiple of 16), and Zarr in N x N chunks.  "
        "[default: TIFF in strips, tiles of 512 in blocks or past 4 GiB; Zarr 512]",
    ),
)


@click.command(short_help="Filter images with kernels (cross-correlation, as PyTorch).")
@io_options
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="Kernel name, inline matrix or filter file; repeat to apply in order. A number "
    "is a 1x1 matrix (-k 3 multiplies by 3); sizes like 3x3 are for convcli shape.",
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
    from convcli.cli.run_images import run_images

    run_images(ctx, options, transpose=False)


@click.command(short_help="Enlarge images by transposed convolution.")
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
    help="bilinear (default), nearest, bicubic, lanczos (made for --factor; lanczos:F,2 "
    "for two lobes), or any kernel spec or filter file.",
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
    interpolation (PyTorch's align_corners=False); "nearest" repeats pixels,
    "bicubic" is PyTorch's bicubic and "lanczos" Pillow's LANCZOS.
    Borders are edge-replicated first, so a constant image stays constant
    (--pad-mode zeros gives PyTorch's ConvTranspose2d exactly, borders included).

    \b
    Examples:
      convcli upsample small.png -o big.png
      convcli upsample small.png --factor 3 -k nearest -o pixelated.png
      convcli apply a.png -k box:3 -o - | convcli upsample - -o b.png
    """
    from convcli.cli.run_images import run_images

    run_images(ctx, options, transpose=True)
