"""stderr for the image commands: error and warning lines, per-image lines, and a
progress bar that never swallows a message.
"""

from __future__ import annotations

import sys

import click

from convcli.cli.failures import CommandError


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

    The bar shows only for a batch on a terminal; lines printed while it shows
    first clear it, so each message keeps a line of its own. ``--quiet`` keeps
    warnings and per-image lines back, never errors.
    """

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        terminal = sys.stderr is not None and sys.stderr.isatty()  # None: closed (2>&-)
        show = not quiet and total > 1 and terminal
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
