"""The Dask side: the missing extra, and blocks run in worker processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convcli
from convcli.conv import engines
from convcli.scale import plan
from tests.paths import ROOT
from tests.scale.checks import assert_matches

pytest.importorskip("dask.array")


def test_without_dask_the_functions_name_the_install_command():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import convcli.scale, convcli.scale.plan, convcli.scale.blocks\n"
        "from convcli import ConvcliError, DependencyError\n"
        "try:\n"
        "    from convcli.scale import conv2d\n"
        "except ImportError as err:\n"
        "    assert isinstance(err, DependencyError) and isinstance(err, ConvcliError)\n"
        "    print(err)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    message = result.stdout.strip()
    assert message.startswith("convcli.scale needs Dask, which could not be imported (")
    assert message.endswith("): pip install 'convcli[dask]'")


class NpyRegions:
    """A region source that holds a path and opens the file inside the worker."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        header = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype = header.shape, header.dtype

    def read_region(self, samples, channels, rows, cols):
        return np.load(self.path, mmap_mode="r")[samples, channels, rows, cols]


def test_blocks_run_in_worker_processes_with_the_callers_engine(tmp_path, rng, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from convcli.scale import conv2d

    monkeypatch.setattr(plan, "BLOCK", 128)  # blocks are planned here, in the client
    x = rng.standard_normal((1, 3, 1100, 1000)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    w = rng.standard_normal((3, 1, 11, 11)).astype(np.float32)
    with engines.force_path("fft"):
        y = conv2d(NpyRegions(tmp_path / "x.npy"), w, groups=3, padding=5)
        expected = convcli.conv2d(x, w, groups=3, padding=5)
    assert y.numblocks[2:] == (2, 2)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.compute(y).result()
    # The workers used the FFT forced here, on the whole image's tile grid: its rounding
    # to the bit, not the rows path's.
    assert_matches(got, expected, exact=True)
    with engines.force_path("rows"):
        assert not np.array_equal(got, convcli.conv2d(x, w, groups=3, padding=5))
