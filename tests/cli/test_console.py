"""stderr's progress: files for a batch, blocks for one image, only on a terminal."""

from __future__ import annotations

import io

import pytest

from convcli.cli import console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_image_in_blocks_shows_a_bar_of_blocks_that_messages_clear():
    terminal = Terminal()
    with console.Status(1, quiet=False, stream=terminal) as status:
        for done in range(1, 4):
            status.blocks(done, 3)
            if done == 2:
                status.note("a line of its own")
        status.note("after the bar")
    text = terminal.getvalue()
    assert "blocks" in text and "100%" in text
    assert "\r\x1b[Ka line of its own\n" in text
    assert text.endswith("100%\x1b[?25h\nafter the bar\n")  # the bar ended: a plain line


def test_a_batch_counts_files_and_no_bar_of_blocks():
    terminal = Terminal()
    with console.Status(2, quiet=False, stream=terminal) as status:
        status.blocks(1, 5)
        status.update(1)
    assert "blocks" not in terminal.getvalue() and "filtering" in terminal.getvalue()


@pytest.mark.parametrize("stream", [Terminal(), io.StringIO()], ids=["quiet", "not a terminal"])
def test_no_bar_when_quiet_or_not_on_a_terminal(stream):
    with console.Status(1, quiet=isinstance(stream, Terminal), stream=stream) as status:
        status.blocks(1, 1)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    "command", [["kernels", "sobel"], ["shape", "8x8", "-k", "sobel"], ["apply", "--help"]]
)
def test_quiet_silences_warnings_only_and_every_command_says_so(tmp_path, monkeypatch, command):
    from click.testing import CliRunner

    from convcli.cli.app import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sobel").write_text("1\n")  # a file named like a kernel: a warning
    runner = CliRunner()
    name = command[0]
    help_text = " ".join(runner.invoke(cli, [name, "--help"]).output.split())
    assert "-q, --quiet Print no warnings" in help_text and "errors are always printed" in help_text
    if command[-1] == "--help":
        return
    loud, quiet = runner.invoke(cli, command), runner.invoke(cli, [*command, "-q"])
    assert loud.exit_code == quiet.exit_code == 0, (loud.output, quiet.exception)
    assert "Warning: kernel 'sobel'" in loud.stderr and quiet.stderr == ""
    assert loud.stdout == quiet.stdout
    failed = runner.invoke(cli, ["kernels", "nonesuch", "-q"])
    assert failed.exit_code == 2 and failed.stderr.startswith("Error:")
