"""stderr for the image commands: error and warning lines, per-image lines, and a
progress bar that never swallows a message.
"""

from __future__ import annotations

import sys

import click

from convcli.cli.failures import CommandError

QUIET_HELP = "Print no warnings{more} on stderr; errors are always printed."


def warn(text: str) -> None:
    """A ``Warning:`` line on stderr, unless the running command was given ``-q``."""
    context = click.get_current_context(silent=True)
    if context is None or not context.params.get("quiet"):
        click.echo(f"Warning: {text}", err=True)


def stdout_closed() -> bool:
    """True when standard output was closed when convcli started (``>&-``): Python then
    sets ``sys.stdout`` to None, and click would write a command's answer nowhere."""
    return sys.stdout is None


def require_stdout(what: str) -> None:
    """Stop (exit 1) when ``what`` would go to a closed standard output."""
    if stdout_closed():
        raise CommandError(
            f"standard output is closed, and {what} goes there; redirect it to a file "
            f"(> out.txt) or a pipe",
            1,
        )


class Status:
    """stderr: error and warning lines, per-image lines, and a progress bar.

    The bar shows only on a terminal: for a batch it counts files, for one image
    filtered in blocks its blocks. Lines printed while it shows first clear it, so each
    message keeps a line of its own. ``--quiet`` keeps warnings, per-image lines and the
    bar back, never errors.
    """

    def __init__(self, total: int, quiet: bool, *, stream=None) -> None:
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        terminal = self.stream is not None and self.stream.isatty()  # None: closed (2>&-)
        self.terminal = not quiet and terminal
        show = self.terminal and total > 1
        self.bar = (
            click.progressbar(length=total, label="filtering", file=self.stream) if show else None
        )
        self.block_bar = None

    def __enter__(self) -> Status:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        self._end_blocks(*exc)

    def error(self, text: str) -> None:
        showing = self.bar is not None or self.block_bar is not None
        click.echo(("\r\x1b[K" if showing else "") + text, file=self.stream, err=True)

    def blocks(self, done: int, total: int) -> None:
        """One more block of ``total`` done (a bar of blocks when no bar of files shows)."""
        if not self.terminal or self.bar is not None:
            return
        if self.block_bar is None:
            self.block_bar = click.progressbar(length=total, label="blocks", file=self.stream)
            self.block_bar.__enter__()
        self.block_bar.update(1)
        if done >= total:
            self._end_blocks(None, None, None)

    def _end_blocks(self, *exc) -> None:
        bar, self.block_bar = self.block_bar, None
        if bar is not None:
            bar.__exit__(*exc)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.error(text)

    def warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.note(f"Warning: {warning}")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
