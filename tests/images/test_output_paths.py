"""Output names before writing: formats by extension, never over an input, name lengths."""

from __future__ import annotations

import os

import pytest

from convcli import OutputError, ParameterError
from convcli.images.output_paths import check_output_name, check_output_path, output_format_for


def test_formats_by_extension_and_option():
    assert output_format_for("a.TIFF") == "TIFF"
    assert output_format_for("-") == "PNG"
    assert output_format_for("-", "jpg") == "JPEG"
    with pytest.raises(ParameterError, match=r"'\.xyz'"):
        output_format_for("a.xyz")
    with pytest.raises(ParameterError, match="no extension"):
        output_format_for("noext")
    with pytest.raises(ParameterError, match="--format 'gif'"):
        output_format_for("a.png", "gif")
    # --format must agree with a known extension (JPEG bytes in a .png mislead)
    with pytest.raises(ParameterError, match="disagrees with the extension"):
        output_format_for("a.png", "jpeg")
    assert output_format_for("a.jpeg", "jpg") == "JPEG"
    assert output_format_for("a.pgm", "ppm") == "PPM"
    assert output_format_for("a.out", "png") == "PNG"


def test_output_that_is_an_input_is_refused(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(b"x")
    link = tmp_path / "link.png"
    link.symlink_to(source)
    hard = tmp_path / "hard.png"
    os.link(source, hard)
    other = tmp_path / "sub" / ".." / "in.png"
    (tmp_path / "sub").mkdir()
    for out in (source, link, hard, other):
        with pytest.raises(ParameterError, match="never overwrites its inputs"):
            check_output_path(str(out), [str(source)])
    check_output_path(str(tmp_path / "new.png"), [str(source)])


def test_a_name_longer_than_the_file_system_allows_is_refused(tmp_path):
    check_output_name(str(tmp_path / ("n" * 251 + ".png")))
    with pytest.raises(OutputError, match="the file name is 256 bytes, more than the 255"):
        check_output_name(str(tmp_path / ("n" * 252 + ".png")))
    check_output_name("-")
