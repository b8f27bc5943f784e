"""Speed of convcli.scale: blocks in one process against the in-memory call, and a
dask.distributed cluster of 1 against 2 worker processes.

    python benchmarks/scale.py                     # both cases, best of 3
    python benchmarks/scale.py --cases inprocess --size 4096 --repeat 5
    python benchmarks/scale.py --cases cluster --cluster-size 8192

``inprocess``: an RGB float32 image that fits in memory (8192^2), gaussian:9 per channel
(the separable engine) and a dense 3x3 RGB -> RGB layer (the rows engine); the whole
image through ``convcli.conv2d`` against ``convcli.scale.conv2d`` stored block by block
into a preallocated array with Dask's threads. Target: blocks <= 1.2x in-memory.

``cluster``: a 16384^2 float32 image in a ``.npy`` file, read by each worker a block's
window at a time and written into a ``.npy`` output the same way (so no pixels pass
through the scheduler), on ``LocalCluster`` with 1 and then 2 worker processes of one
thread each. Target: 2 workers >= 1.6x faster than 1.

Timing lives here only, never in the tests. Every comparison first checks that both
sides compute the same numbers. Prints a Markdown table with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dask  # noqa: E402
import dask.array as da  # noqa: E402

from benchmarks.common import clusters  # noqa: E402
from convcli import conv2d  # noqa: E402
from convcli.kernels.named import named_kernel  # noqa: E402
from convcli.scale import conv2d as scale_conv2d  # noqa: E402


def best_s(*funcs: Callable[[], object], repeat: int) -> list[float]:
    """The best wall time of each function, run in turn ``repeat`` times after a warm-up:
    alternating, so that a busy spell on a shared machine slows both sides alike."""
    for func in funcs:
        func()  # warm-up: imports, pools, page faults of the output
    times = [[] for _ in funcs]
    for _ in range(repeat):
        for func, spent in zip(funcs, times, strict=True):
            start = time.perf_counter()
            func()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def same(a: np.ndarray, b: np.ndarray) -> str:
    if np.array_equal(a, b):
        return "bit-identical"
    error = float(np.abs(a - b).max() / np.abs(b).max())
    if error > 1e-6:
        raise SystemExit(f"blocks differ from the in-memory result by {error:.2e}")
    return f"max error {error:.1e} of max|y|"


def case_inprocess(args) -> list[str]:
    rng = np.random.default_rng(0)
    size = args.size
    x = rng.random((1, 3, size, size), dtype=np.float32)
    gaussian = named_kernel("gaussian:9").astype(np.float32)
    cases = [
        ("gaussian:9 per channel", np.broadcast_to(gaussian, (3, 1, 9, 9)).copy(), 3, 4),
        ("3x3 dense RGB->RGB", rng.random((3, 3, 3, 3), dtype=np.float32), 1, 1),
    ]
    rows = []
    out = np.empty_like(x)
    for name, w, groups, pad in cases:
        whole = conv2d(x, w, groups=groups, padding=pad)

        def blocks(w=w, groups=groups, pad=pad):
            y = scale_conv2d(x, w, groups=groups, padding=pad)
            da.store(y, out, lock=False, scheduler="threads", num_workers=os.cpu_count())
            return y

        y = blocks()
        check = same(out, whole)
        memory_s, blocks_s = best_s(
            lambda w=w, groups=groups, pad=pad: conv2d(x, w, groups=groups, padding=pad),
            blocks,
            repeat=args.repeat,
        )
        ratio = blocks_s / memory_s
        rows.append(
            f"| in-process {size}^2 RGB, {name} | {memory_s:.3f} s in memory | "
            f"{blocks_s:.3f} s in {y.npartitions} blocks {y.chunksize[2]}x{y.chunksize[3]} | "
            f"{ratio:.2f}x | <= 1.2x | {'yes' if ratio <= 1.2 else 'no'} | {check} |"
        )
        del whole
    return rows


class NpySource:
    """A region source over a ``.npy`` file: opened inside the worker, a window at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        header = np.load(path, mmap_mode="r")
        self.shape, self.dtype = header.shape, header.dtype

    def read_region(self, samples, channels, rows, cols):
        return np.array(np.load(self.path, mmap_mode="r")[samples, channels, rows, cols])

    def __dask_tokenize__(self):
        return self.path, os.stat(self.path).st_mtime_ns


class NpyTarget:
    """``da.store``'s target: each block written into a ``.npy`` file by the worker."""

    def __init__(self, path: str, shape, dtype) -> None:
        self.path = path
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
        self.shape, self.dtype = shape, dtype

    def __setitem__(self, where, value) -> None:
        # A shared mapping: the page cache holds the write for every process at once (no
        # flush, which would sync the whole file's mapping for every block).
        np.load(self.path, mmap_mode="r+")[where] = value


def _cpu_seconds() -> float:
    user, system = os.times()[:2]
    return user + system


def busy_cores(client, run: Callable[[], object]) -> float:
    """Worker CPU seconds per wall-clock second during one ``run``."""
    before = sum(client.run(_cpu_seconds).values())
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    return (sum(client.run(_cpu_seconds).values()) - before) / wall


def case_cluster(args) -> list[str]:
    size = args.cluster_size
    folder = Path(tempfile.mkdtemp(prefix="scale-core-bench-"))
    try:
        rng = np.random.default_rng(0)
        x = np.lib.format.open_memmap(
            folder / "x.npy", mode="w+", dtype=np.float32, shape=(1, 1, size, size)
        )
        for r in range(0, size, 1024):
            x[0, 0, r : r + 1024] = rng.random((min(1024, size - r), size), dtype=np.float32)
        x.flush()
        del x
        w = named_kernel("gaussian:9").astype(np.float32)[None, None]
        source = NpySource(str(folder / "x.npy"))
        y = scale_conv2d(source, w, padding=4)
        target = NpyTarget(str(folder / "y.npy"), y.shape, y.dtype)
        with clusters(1, 2) as found:
            clients = [client for _, client in found]
            # The two clusters take turns, so that a busy spell slows both alike.
            runs = [
                lambda client=client: da.store(y, target, lock=False, scheduler=client)
                for client in clients
            ]
            times = dict(zip((1, 2), best_s(*runs, repeat=args.cluster_repeat), strict=True))
            # The CPU time the workers got per second: on a shared machine, the cores the
            # run really had (the speed-up cannot exceed it).
            cores = {
                n: busy_cores(client, run)
                for n, client, run in zip((1, 2), clients, runs, strict=True)
            }
        check_rows = slice(size // 2 - 300, size // 2 + 300)
        written = np.load(folder / "y.npy", mmap_mode="r")[0, 0, check_rows]
        window = np.load(folder / "x.npy", mmap_mode="r")[
            :, :, check_rows.start - 4 : check_rows.stop + 4
        ]
        check = same(np.asarray(written), conv2d(np.asarray(window), w, padding=(0, 0, 4, 4))[0, 0])
        speedup = times[1] / times[2]
        return [
            f"| LocalCluster {size}^2 float32, gaussian:9, .npy in and out | "
            f"{times[1]:.2f} s on 1 worker ({cores[1]:.2f} cores busy) | {times[2]:.2f} s on "
            f"2 workers ({cores[2]:.2f} cores busy; {y.npartitions} blocks) | "
            f"{speedup:.2f}x faster | >= 1.6x | {'yes' if speedup >= 1.6 else 'no'} | "
            f"{check} (a band) |"
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def machine() -> str:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, load average {load} at the start, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Dask {dask.__version__}, "
        f"{time.strftime('%Y-%m-%d')}. Times are best-of-N wall-clock seconds."
    )


CASES = {"inprocess": case_inprocess, "cluster": case_cluster}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--size", type=int, default=8192, help="in-process image side")
    parser.add_argument("--cluster-size", type=int, default=16384, help="cluster image side")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs, in-process")
    parser.add_argument("--cluster-repeat", type=int, default=3, help="timed runs per cluster")
    args = parser.parse_args()
    lines = [
        machine(),
        "",
        "| case | reference | blocks | ratio | target | met | result |",
        "|---|---|---|---:|---|---|---|",
    ]
    for name in args.cases.split(","):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        lines += CASES[name.strip()](args)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
