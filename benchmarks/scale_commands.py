"""Whole commands on big images and clusters: ``convcli apply`` in blocks against the
in-memory path and libvips, on 1 and 2 cluster workers, and a batch on a cluster.

    python benchmarks/scale_commands.py                      # every case
    python benchmarks/scale_commands.py --cases memory --sizes 8192,16384
    python benchmarks/scale_commands.py --cases cluster,batch

``memory``: float32 tiled TIFFs of 8192^2, 16384^2 and 32768^2 (0.25, 1 and 4 GiB)
filtered with gaussian:9 to a tiled TIFF. convcli runs as the user would on a machine
where the image does not fit: under an address-space limit (``ulimit -v``, 1 GiB), so
``--chunks auto`` streams it in blocks; peak RSS is the child's own (``getrusage``).
Beside it, the in-memory path (no limit; up to 16384^2) and ``vips convsep`` with the
same separable kernel. Targets: peak RSS <= 400 MiB at 16384^2, flat as the image grows.

``command``: an 8192^2 RGB 8-bit TIFF (fits in memory) through gaussian:9 and sobel:
the in-memory command against the same command in blocks. Target: blocks <= 1.2x.

``cluster``: the 16384^2 float32 TIFF through ``--scheduler tcp://...`` on a
``LocalCluster`` of 1, then 2 single-threaded workers (started beforehand, not timed),
to Zarr (the workers write it) and to TIFF (this process writes it). Target: 2 workers
>= 1.6x faster than 1 (to Zarr). Prints the CPU the workers really got.

``batch``: 200 PNGs of 256x256 RGB through box:3, on 2 cluster workers against the local
batch on 2 threads: outputs byte for byte the same, the cost per file of the cluster.
Target: <= 10 ms per file.

Timings are best of N, the sides taking turns; memory is measured from outside the
process. Nothing here runs in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import clusters  # noqa: E402
from benchmarks.scale import _cpu_seconds, machine  # noqa: E402
from convcli.images.writing import write_image  # noqa: E402
from convcli.kernels.named import named_kernel  # noqa: E402

CONVCLI = [sys.executable, "-m", "convcli"]
LIMIT = 1 << 30  # the address space convcli gets: not enough for any of the images in memory


def measure(command: list[str], *, limit: int | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of ``command`` run as a child of a fresh Python,
    under an address-space ``limit``; fails if the command fails."""
    script = (
        "import resource, subprocess, sys, time\n"
        "limit = int(sys.argv[1])\n"
        "def limited():\n"
        "    if limit: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[2:], preexec_fn=limited).returncode\n"
        "wall = time.perf_counter() - start\n"
        "print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    )
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    out = subprocess.run(
        [sys.executable, "-c", script, str(limit or 0), *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    code, wall, peak = out.stdout.split()
    if int(code):
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr}")
    return float(wall), int(peak)


def float_tiff(path: Path, side: int) -> None:
    tile = (np.add.outer(np.arange(512), np.arange(512)) % 97 / 97).astype(np.float32)
    tiles = (tile for _ in range((side // 512) ** 2))
    tifffile.imwrite(path, tiles, shape=(side, side), dtype=np.float32, tile=(512, 512))


def vips_mask(path: Path) -> None:
    row = named_kernel("gaussian:9")[4]
    row = row / row.sum()
    path.write_text(f"{len(row)} 1 1 0\n" + " ".join(repr(float(v)) for v in row) + "\n")


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def case_memory(args, folder: Path) -> list[str]:
    rows = []
    vips = shutil.which("vips")
    vips_mask(folder / "g9.mat")
    for side in args.sizes:
        source, out = folder / f"in{side}.tif", folder / f"out{side}.tif"
        float_tiff(source, side)
        command = [*CONVCLI, "apply", str(source), "-k", "gaussian:9", "-o", str(out), "-q"]
        wall, peak = measure(command, limit=LIMIT)
        cells = [f"{wall:.1f} s, {mib(peak)} (in blocks, under ulimit -v 1 GiB)"]
        if side <= args.memory_up_to:
            wall, peak = measure([*command, "--max-pixels", str(side * side)])
            cells.append(f"{wall:.1f} s, {mib(peak)}")
        else:
            cells.append("not run (about 4x the image)")
        if vips:
            options = "tile,tile-width=512,tile-height=512,compression=deflate,bigtiff"
            target = f"{folder / 'vips.tif'}[{options}]"
            wall, peak = measure([vips, "convsep", str(source), target, str(folder / "g9.mat")])
            cells.append(f"{wall:.1f} s, {mib(peak)}")
        rows.append(
            f"| memory {side}^2 float32 TIFF, gaussian:9 -> tiled TIFF | "
            + " | ".join(cells)
            + " |"
        )
        source.unlink()
        out.unlink()
        with contextlib.suppress(FileNotFoundError):
            (folder / "vips.tif").unlink()
    return rows


def case_command(args, folder: Path) -> list[str]:
    rng = np.random.default_rng(0)
    source = folder / "rgb.tif"
    tifffile.imwrite(source, rng.integers(0, 256, (8192, 8192, 3), np.uint8), tile=(512, 512))
    rows = []
    for kernel in ("gaussian:9", "sobel"):
        base = [*CONVCLI, "apply", str(source), "-k", kernel, "-q"]
        memory_cmd = [*base, "-o", str(folder / "m.tif")]
        blocks_cmd = [*base, "-o", str(folder / "b.tif")]
        best = {"memory": [], "blocks": []}
        for _ in range(args.repeat):
            best["memory"].append(measure(memory_cmd)[0])
            best["blocks"].append(measure(blocks_cmd, limit=LIMIT)[0])  # auto: blocks
        same = (
            tifffile.imread(folder / "m.tif").tobytes()
            == tifffile.imread(folder / "b.tif").tobytes()
        )
        ratio = min(best["blocks"]) / min(best["memory"])
        rows.append(
            f"| command 8192^2 RGB 8-bit TIFF, {kernel} -> TIFF | {min(best['memory']):.2f} s in "
            f"memory | {min(best['blocks']):.2f} s in blocks | {ratio:.2f}x (<= 1.2x: "
            f"{'yes' if ratio <= 1.2 else 'no'}) | {'same pixels' if same else 'PIXELS DIFFER'} |"
        )
    return rows


def case_cluster(args, folder: Path) -> list[str]:
    source = folder / "cluster.tif"
    float_tiff(source, args.cluster_size)
    rows = []
    with clusters(1, 2) as found:
        for suffix in (".zarr", ".tif"):
            times, cores = {}, {}
            for workers, (address, client) in zip((1, 2), found, strict=True):
                command = [
                    *CONVCLI,
                    "apply",
                    str(source),
                    "-k",
                    "gaussian:9",
                    "--scheduler",
                    address,
                    "-o",
                    str(folder / f"c{workers}{suffix}"),
                    "-q",
                ]
                runs = []
                for _ in range(args.repeat):
                    before = sum(client.run(_cpu_seconds).values())
                    wall = measure(command)[0]
                    runs.append(wall)
                    cores[workers] = (sum(client.run(_cpu_seconds).values()) - before) / wall
                times[workers] = min(runs)
            speedup = times[1] / times[2]
            rows.append(
                f"| cluster {args.cluster_size}^2 float32 TIFF -> {suffix}, gaussian:9 | "
                f"{times[1]:.1f} s on 1 worker ({cores[1]:.2f} cores busy) | {times[2]:.1f} s on "
                f"2 workers ({cores[2]:.2f} cores busy) | {speedup:.2f}x (>= 1.6x: "
                f"{'yes' if speedup >= 1.6 else 'no'}) |"
            )
    return rows


def case_batch(args, folder: Path) -> list[str]:
    rng = np.random.default_rng(1)
    inputs = []
    for n in range(args.files):
        path = folder / f"in{n:04}.png"
        write_image(rng.random((3, 256, 256), dtype=np.float32), str(path))
        inputs.append(str(path))
    with clusters(2) as found:
        address, _ = found[0]
        local, cluster = [], []
        for _ in range(args.repeat):
            for name, extra, times in (
                ("l", ["--threads", "2"], local),
                ("c", ["--scheduler", address], cluster),
            ):
                out = folder / name
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                times.append(
                    measure(
                        [*CONVCLI, "apply", *inputs, "-k", "box:3", "-o", f"{out}/", "-q", *extra]
                    )[0]
                )
    same = (
        all(
            (folder / "l" / p.name).read_bytes() == p.read_bytes() for p in (folder / "c").iterdir()
        )
        and len(list((folder / "c").iterdir())) == args.files
    )
    overhead = (min(cluster) - min(local)) / args.files * 1000
    return [
        f"| batch of {args.files} PNGs 256^2 RGB, box:3 | {min(local):.2f} s locally on 2 "
        f"threads | {min(cluster):.2f} s on 2 cluster workers | {overhead:+.1f} ms per file "
        f"(<= 10 ms: {'yes' if overhead <= 10 else 'no'}) | "
        f"{'same bytes' if same else 'OUTPUTS DIFFER'} |"
    ]


CASES = {
    "memory": case_memory,
    "command": case_command,
    "cluster": case_cluster,
    "batch": case_batch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--sizes", default="8192,16384,32768")
    parser.add_argument("--memory-up-to", type=int, default=16384)
    parser.add_argument("--cluster-size", type=int, default=16384)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    lines = [
        machine(),
        "",
        "| case | convcli | reference | peer or ratio | result |",
        "|---|---|---|---|---|",
    ]
    folder = Path(tempfile.mkdtemp(prefix="scale-commands-"))
    try:
        for name in args.cases.split(","):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            lines += CASES[name.strip()](args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
