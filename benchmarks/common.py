"""What the benchmark modules share: a table row, finding the peers' commands, and
LocalClusters set up as convcli's own ``local:N``."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def clusters(*sizes: int):
    """A LocalCluster of each of ``sizes`` single-threaded worker processes, with the
    worker settings of ``--scheduler local:N``: (scheduler address, client) pairs."""
    from distributed import Client, LocalCluster

    from convcli.scale.schedulers import WORKER_ENV

    with contextlib.ExitStack() as stack:
        found = []
        for workers in sizes:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    env=WORKER_ENV,
                )
            )
            client = stack.enter_context(Client(cluster, set_as_default=False))
            found.append((cluster.scheduler_address, client))
        yield found
