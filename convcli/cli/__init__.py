"""The command line: click only. Every command parses its options and calls the library;
library errors become one ``Error: ...`` line with their exit code.

- :mod:`~convcli.cli.app`: the ``convcli`` group and the console entry point;
- :mod:`~convcli.cli.image_commands` / :mod:`~convcli.cli.run_images`: ``apply`` and
  ``upsample``, declared and run;
- :mod:`~convcli.cli.shape_command` / :mod:`~convcli.cli.run_shape`: ``shape``;
- :mod:`~convcli.cli.kernels_command`: ``kernels``;
- :mod:`~convcli.cli.options`: option text parsed, and the pipeline steps it makes;
- :mod:`~convcli.cli.console`: messages and the progress bar on stderr;
- :mod:`~convcli.cli.failures`: library errors as click exceptions.
"""

from convcli.cli.app import cli, main

__all__ = ["cli", "main"]
