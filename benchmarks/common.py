"""What the benchmark modules share: a table row, and finding the peers' commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    case: str
    ours_ms: float
    peers: dict[str, float] = field(default_factory=dict)  # peer -> ms
    target: str = ""
    ratio: float | None = None  # the ratio the target is about
    met: bool | None = None
    note: str = ""


def find_command(*names: str) -> str | None:
    """The first of ``names`` on PATH that really is the tool (an ImageMagick
    ``convert`` says ``Version: ImageMagick`` in ``-version``; stand-ins do not)."""
    for name in names:
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            path = shutil.which(name, path=directory)
            if not path:
                continue
            if name not in ("convert", "magick", "mogrify"):
                return path
            out = subprocess.run([path, "-version"], capture_output=True, text=True)
            if "Version: ImageMagick" in out.stdout:
                return path
    return None
