"""How a library error leaves the command line: one ``Error: ...`` line and its exit code.

A leaf module: the group and every command import it, and it imports none of them.
"""

from __future__ import annotations

import click

from convcli.errors import ConvcliError


class CommandError(click.ClickException):
    """A library error on its way out: one ``Error: ...`` line and its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(err: ConvcliError) -> CommandError:
    return CommandError(str(err), err.exit_code)
