"""The convcli command line: parses options, calls the library, reports errors.

Library errors (:class:`convcli.errors.ConvcliError`) become one ``Error: ...``
line with their exit code: 2 for usage (bad option, kernel or shape), 1 for an
input or output that could not be processed. NumPy and Pillow are imported
inside the commands so that ``convcli --help`` starts quickly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import click

from convcli import __version__
from convcli.cli.failures import CommandError
from convcli.cli.image_commands import apply, upsample
from convcli.cli.kernels_command import kernels
from convcli.cli.shape_command import shape


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
        except MemoryError:  # what no estimate foresaw (a huge kernel file, say)
            raise CommandError("ran out of memory; use smaller images or kernels", 1) from None


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
      convcli shape 1,3,224,224 -k 7x7 --stride 2 --padding 3
      convcli kernels gaussian:5

    Exit status: 0 success, 1 an input or output failed, 2 usage error, 130 interrupted
    (129 SIGHUP, 143 SIGTERM), 141 the reader of stdout went away (e.g. | head).
    """


for command in (apply, upsample, shape, kernels):
    cli.add_command(command)


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread like ``KeyboardInterrupt`` is for
    SIGINT, so that the same cleanup runs (an output being written leaves nothing)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame) -> None:
    raise Terminated(signum)


def _catch_termination() -> None:
    """SIGTERM and SIGHUP become :class:`Terminated`, unless the caller ignores them
    (``nohup`` ignores SIGHUP, and so must convcli then)."""
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _terminate)


def _hold_standard_descriptors() -> None:
    """Open /dev/null on a standard descriptor that was closed (``>&-``).

    Python leaves ``sys.stdout`` (or stdin, stderr) as None then, which the commands
    check; but the descriptor number stays free, and the next file opened would take
    it: an output file on fd 2 would receive whatever a C library prints to stderr.
    """
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, flags)  # the lowest free descriptor: this one


def main(argv: list[str] | None = None) -> None:
    """Console entry point: exit 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP (with
    nothing half-written left behind), quiet on a closed pipe."""
    _hold_standard_descriptors()
    _catch_termination()
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
    except Terminated as err:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            click.echo(f"\nAborted ({signal.Signals(err.signum).name}).", err=True)
        sys.exit(128 + err.signum)
    sys.exit(code or 0)


def _silence_stdout() -> None:
    # The reader went away (e.g. `| head`): point stdout at /dev/null so the
    # interpreter's final flush does not raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
