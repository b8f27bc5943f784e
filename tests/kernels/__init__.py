"""Tests of convcli.kernels; ``write`` makes the filter files they read."""

from __future__ import annotations


def write(tmp_path, name: str, content: str | bytes) -> str:
    """``content`` (text or bytes) as the file ``name`` in ``tmp_path``; its path."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)
