"""File identities: an output compared with the inputs by (device, inode), and the names
of standard descriptors."""

from __future__ import annotations

import os

import pytest

from convcli import ParameterError
from convcli.images.identities import file_identities, names_descriptor, same_path
from convcli.images.output_paths import check_output_path


def test_output_identities_are_looked_up_once(tmp_path):
    inputs = []
    for index in range(3):
        path = tmp_path / f"in{index}.png"
        path.write_bytes(b"x")
        inputs.append(str(path))
    kernel = tmp_path / "k.npy"
    kernel.write_bytes(b"k")
    link = tmp_path / "link.png"
    link.symlink_to(inputs[2])
    known = file_identities(inputs, [str(kernel)])
    assert sorted(kind for kind, _ in known.values()) == ["input", "input", "input", "kernel"]
    with pytest.raises(ParameterError, match=r"is the input '.*in2\.png'"):
        check_output_path(str(link), inputs, known=known)
    with pytest.raises(ParameterError, match="kernel file"):
        check_output_path(str(kernel), inputs, kernels=[str(kernel)], known=known)


def test_names_of_a_descriptor_are_followed_through_links(tmp_path):
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")
    assert names_descriptor(str(link), 1) and names_descriptor(f"/proc/self/fd/{1}", 1)
    assert not names_descriptor(str(link), 2) and not names_descriptor(str(tmp_path / "x"), 1)


def test_same_path_for_existing_and_new_files(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(b"x")
    hard = tmp_path / "b.png"
    os.link(source, hard)
    assert same_path(str(source), str(hard))
    assert same_path(str(tmp_path / "new.png"), str(tmp_path / "." / "new.png"))
    assert not same_path("-", "-") and not same_path(str(source), str(tmp_path / "c.png"))
