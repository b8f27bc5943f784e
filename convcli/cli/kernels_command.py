"""The ``kernels`` command: the catalogue of named kernels, or one kernel or filter file."""

from __future__ import annotations

import click

from convcli.cli.console import QUIET_HELP, require_stdout, warn
from convcli.cli.failures import fail
from convcli.errors import ConvcliError


@click.command(short_help="List the named kernels, or show one kernel or file.")
@click.argument("spec", required=False)
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP.format(more=""))
def kernels(spec: str | None, quiet: bool) -> None:
    """List the named kernels, or show one kernel or filter file.

    \b
    Examples:
      convcli kernels
      convcli kernels gaussian:5,1.2
      convcli kernels filters/sobel-xy.json
      convcli kernels sobel
    """
    from convcli.images.output_paths import check_output_path
    from convcli.kernels import list_kernels, load_filter
    from convcli.kernels.describe import describe_filter

    require_stdout("the kernel listing")

    try:
        if spec is None:
            rows = list_kernels()
            width = max(len(name) for name, _ in rows)
            for name, description in rows:
                click.echo(f"{name:<{width}}  {description}")
            return
        found = load_filter(spec)
        # Never appended to the file it describes (convcli kernels k.txt >> k.txt).
        check_output_path("-", [], what="the kernel text", kernels=found.files)
        click.echo(describe_filter(found))
        for warning in found.warnings:
            warn(warning)
    except ConvcliError as err:
        raise fail(err) from None
