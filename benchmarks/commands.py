"""Whole commands, file in to file out, as a shell user times them.

Each case runs convcli and its peers as processes (start-up, decoding, filtering,
encoding and writing included), in turn - convcli, peer, convcli, peer, ... - and
compares them round by round: the ratio is the median of the per-round ratios, so a
machine whose speed drifts (a shared one) still gives a fair figure. Times in the
table are median wall-clock milliseconds. Every tool writes PNG at deflate level 1 and
JPEG at quality 95 with 4:2:0 chroma; outputs are checked to agree before any time is
compared. The OpenCV peers are the short scripts in ``benchmarks/peers/``.

Inputs are made in a temporary directory from ``sample_images/`` (enlarged with
Pillow's bicubic filter; the JPEGs are 1024x768 crops of them at quality 90).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import ROOT, Row, find_command

PEERS = Path(__file__).resolve().parent / "peers"
SHARPEN = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
CONVCLI = [sys.executable, "-m", "convcli"]


def _kernel(spec: str) -> np.ndarray:
    sys.path.insert(0, str(ROOT))
    from convcli.kernels import load_filter

    return load_filter(spec).weight


def _kernel_files(tmp: Path, name: str, weight: np.ndarray) -> tuple[str, str]:
    """The kernel as numpy.loadtxt text (OpenCV scripts) and as a libvips .mat."""
    text = "\n".join(" ".join(repr(float(v)) for v in row) for row in weight)
    (tmp / f"{name}.txt").write_text(text + "\n")
    (tmp / f"{name}.mat").write_text(f"{weight.shape[1]} {weight.shape[0]} 1 0\n{text}\n")
    return str(tmp / f"{name}.txt"), str(tmp / f"{name}.mat")


def _enlarged(size: tuple[int, int], index: int = 0):
    from PIL import Image

    sources = sorted((ROOT / "sample_images").glob("*.png"))
    image = Image.open(sources[index % len(sources)]).convert("RGB")
    return image.resize(size, Image.BICUBIC)


def _jpegs(folder: Path, count: int, size: tuple[int, int]) -> list[str]:
    """``count`` different JPEGs of ``size``: crops of the enlarged sample images."""
    folder.mkdir()
    width, height = size
    paths = []
    for index in range(count):
        big = _enlarged((2 * width, 2 * height), index)
        left, top = (index * 37) % width, (index * 53) % height
        path = folder / f"img{index:04d}.jpg"
        big.crop((left, top, left + width, top + height)).save(path, quality=90)
        paths.append(str(path))
    return paths


TIME = find_command("time")


def run_once(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak MiB of one run of ``args``.

    CPU and memory come from ``/usr/bin/time`` when it is installed (else NaN): the
    rusage of a child forked from this process would count this process's memory,
    which the child's high-water mark keeps across exec.
    """
    with tempfile.NamedTemporaryFile() as log, tempfile.NamedTemporaryFile("r") as usage:
        wrapper = [TIME, "-o", usage.name, "-f", "%U %S %M"] if TIME else []
        start = time.perf_counter()
        result = subprocess.run([*wrapper, *args], stdout=log, stderr=log)
        wall = time.perf_counter() - start
        if result.returncode:
            log.seek(0)
            raise SystemExit(f"{' '.join(args[:4])} ... failed:\n{log.read().decode()[-2000:]}")
        fields = usage.read().split()[-3:] if TIME else []
    if len(fields) != 3:
        return wall, float("nan"), float("nan")
    user, system, peak_kib = map(float, fields)
    return wall, user + system, peak_kib / 1024


def timed_rounds(commands: dict[str, list[str]], repeat: int) -> dict[str, list[tuple]]:
    """(wall s, CPU s, peak MiB) of each command, ``repeat`` rounds, the commands in turn
    in each round (after one warm-up run each: page cache, Python's bytecode cache)."""
    for args in commands.values():
        run_once(args)
    runs: dict[str, list[tuple]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, args in commands.items():
            runs[name].append(run_once(args))
    return runs


def _compare(name: str, runs: dict[str, list[tuple]], limits: dict[str, float], target: str) -> Row:
    """A row: median wall times, the median per-round ratio to each peer (wall), met if
    all are within their limits; the note adds the CPU ratios and convcli's peak memory."""
    ours = runs.pop("convcli")
    ratios, cpu = {}, {}
    for peer, theirs in runs.items():
        ratios[peer] = statistics.median(o[0] / t[0] for o, t in zip(ours, theirs, strict=True))
        cpu[peer] = statistics.median(o[1] / t[1] for o, t in zip(ours, theirs, strict=True))
    first = next(iter(limits))
    notes = [f"{ratios[p]:.2f}x {p}" for p in limits if p != first and p in ratios]
    notes.append("cpu " + ", ".join(f"{cpu[p]:.2f}x {p}" for p in limits if p in cpu))
    notes.append(f"peak {max(run[2] for run in ours):.0f} MiB")
    met = all(ratios[p] <= limit for p, limit in limits.items() if p in ratios)
    return Row(
        name,
        1000 * statistics.median(run[0] for run in ours),
        {peer: 1000 * statistics.median(run[0] for run in theirs) for peer, theirs in runs.items()},
        target,
        ratios.get(first),
        met if any(p in ratios for p in limits) else None,
        "; ".join(notes),
    )


def _pixels(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), np.int16)


def _check_close(ours: str, theirs: str, what: str, *, border: int = 0, mean: float = 0) -> None:
    """Same size; every pixel within one level (inside ``border``), or, for lossy
    outputs (``mean``), a mean difference under ``mean`` levels."""
    a, b = _pixels(ours), _pixels(theirs)
    if a.shape != b.shape:
        raise SystemExit(f"{what}: output shapes differ ({a.shape} vs {b.shape}); not comparable")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    difference = np.abs(a - b)
    if mean and difference.mean() > mean or not mean and difference.max() > 1:
        raise SystemExit(
            f"{what}: outputs differ by up to {difference.max()} levels (mean "
            f"{difference.mean():.2f}); not comparable"
        )


def in_scratch(case: Callable[[Path, int, bool], list[Row]]) -> Callable[[int, bool], list[Row]]:
    """Run ``case`` with a scratch directory of its own, removed afterwards."""

    def run(repeat: int, quick: bool) -> list[Row]:
        with tempfile.TemporaryDirectory(prefix="convcli-bench-") as tmp:
            return case(Path(tmp), repeat, quick)

    return run


def case_filter(spec: str, label: str) -> Callable[[int, bool], list[Row]]:
    @in_scratch
    def case(tmp: Path, repeat: int, quick: bool) -> list[Row]:
        size = 1024 if quick else 4096
        image = str(tmp / "big.png")
        _enlarged((size, size)).save(image, compress_level=1)
        text, mat = _kernel_files(tmp, "kernel", _kernel(spec))
        out = {name: str(tmp / f"{name}.png") for name in ("convcli", "opencv", "vips")}
        commands = {"convcli": [*CONVCLI, "apply", image, "-k", spec, "-q", "-o", out["convcli"]]}
        if _has_cv2():
            commands["opencv"] = [sys.executable, str(PEERS / "opencv_filter.py"), image]
            commands["opencv"] += [out["opencv"], text]
        vips = find_command("vips")
        if vips:
            commands["vips"] = [vips, "conv", image, out["vips"] + "[compression=1]", mat]
        walls = timed_rounds(commands, repeat)
        radius = _kernel(spec).shape[0] // 2
        if "opencv" in commands:
            _check_close(out["convcli"], out["opencv"], f"{label} vs opencv")
        if vips:  # libvips extends its borders its own way: compare inside them
            _check_close(out["convcli"], out["vips"], f"{label} vs vips", border=radius)
        limits = {"opencv": 1.0, "vips": 1.0}
        return [_compare(f"cmd {label}", walls, limits, "<= 1.0x opencv script, <= 1.0x vips")]

    return case


def case_upsample(factor: int) -> Callable[[int, bool], list[Row]]:
    @in_scratch
    def case(tmp: Path, repeat: int, quick: bool) -> list[Row]:
        size = (1024 if quick else 4096) // factor
        image = str(tmp / "small.png")
        _enlarged((size, size)).save(image, compress_level=1)
        out = {name: str(tmp / f"{name}.png") for name in ("convcli", "opencv")}
        commands = {
            "convcli": [*CONVCLI, "upsample", image, "--factor", str(factor), "-q"]
            + ["-o", out["convcli"]]
        }
        if _has_cv2():
            commands["opencv"] = [sys.executable, str(PEERS / "opencv_resize.py"), image]
            commands["opencv"] += [out["opencv"], str(factor)]
        walls = timed_rounds(commands, repeat)
        if "opencv" in commands:
            _check_close(out["convcli"], out["opencv"], f"upsample x{factor} vs opencv")
        target = "<= 1.0x opencv resize script"
        return [_compare(f"cmd upsample x{factor}", walls, {"opencv": 1.0}, target)]

    return case


def _batch_commands(tmp: Path, inputs: list[str], peers: bool) -> dict[str, list[str]]:
    """convcli and (with ``peers``) each peer over ``inputs``, into folders of their own."""
    text, mat = _kernel_files(tmp, "sharpen", np.array(SHARPEN, np.float64))
    for name in ("convcli", "opencv", "vips", "mogrify"):
        (tmp / name).mkdir(exist_ok=True)
    spec = "; ".join(" ".join(str(v) for v in row) for row in SHARPEN)
    commands = {"convcli": [*CONVCLI, "apply", *inputs, "-k", spec, "-q", "-o", f"{tmp}/convcli/"]}
    if not peers:
        return commands
    if _has_cv2():
        commands["opencv"] = [sys.executable, str(PEERS / "opencv_batch.py"), text]
        commands["opencv"] += [str(tmp / "opencv"), *inputs]
    vips = find_command("vips")
    if vips:  # one process per file, as a shell loop runs it
        loop = f'for f in "$@"; do {vips} conv "$f" "{tmp}/vips/$(basename "$f")'
        loop += f'[Q=95,subsample-mode=on]" {mat} || exit 1; done'
        commands["vips"] = ["sh", "-c", loop, "sh", *inputs]
    mogrify = find_command("mogrify")
    if mogrify:
        kernel = "3x3:" + ",".join(str(v) for row in SHARPEN for v in row)
        commands["mogrify"] = [mogrify, "-path", str(tmp / "mogrify"), "-morphology"]
        commands["mogrify"] += ["Convolve", kernel, "-quality", "95", "-sampling-factor"]
        commands["mogrify"] += ["4:2:0", *inputs]
    return commands


@in_scratch
def case_batch(tmp: Path, repeat: int, quick: bool) -> list[Row]:
    count, size = (30, (512, 384)) if quick else (120, (1024, 768))
    inputs = _jpegs(tmp / "in", count, size)
    commands = _batch_commands(tmp, inputs, peers=True)
    walls = timed_rounds(commands, repeat)
    for peer in commands.keys() - {"convcli"}:
        for name in (Path(inputs[0]).name, Path(inputs[-1]).name):
            ours, theirs = tmp / "convcli" / name, tmp / peer / name
            # JPEG outputs: each tool's encoder rounds its own way; libvips and
            # ImageMagick extend borders differently, so compare inside them.
            _check_close(str(ours), str(theirs), f"batch vs {peer}", border=1, mean=1.5)
    limits = {"opencv": 1.0, "vips": 0.5, "mogrify": 0.5}
    target = "<= 1.0x opencv loop, <= 0.5x vips loop, <= 0.5x mogrify"
    return [_compare(f"cmd batch {count} jpeg", walls, limits, target)]


@in_scratch
def case_batch_scaling(tmp: Path, repeat: int, quick: bool) -> list[Row]:
    """Time per file from 10 to 1,000 files: (wall(N) - wall(1 file)) / (N - 1)."""
    counts = [10, 40] if quick else [10, 100, 1000]
    inputs = _jpegs(tmp / "in", max(counts), (512, 384))
    commands = {
        str(n): _batch_commands(tmp, inputs[:n], peers=False)["convcli"] for n in [1, *counts]
    }
    # (wall(10) - wall(1)) / 9 magnifies the start-up's noise: every round counts.
    runs = timed_rounds(commands, repeat)
    wall = {n: statistics.median(run[0] for run in runs[str(n)]) for n in [1, *counts]}
    per_file = {f"{n} files ms/file": 1000 * (wall[n] - wall[1]) / (n - 1) for n in counts}
    spread = max(per_file.values()) / min(per_file.values())
    return [
        Row(
            "cmd batch scaling",
            0.0,
            per_file,
            "ms/file flat within 1.25x (512x384 JPEGs)",
            spread,
            spread <= 1.25,
            f"max/min {spread:.2f}",
        )
    ]


def _has_cv2() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


COMMAND_CASES = {
    "cmd-gauss9": case_filter("gaussian:9", "gaussian:9 png"),
    "cmd-3x3": case_filter("0 -1 0; -1 5 -1; 0 -1 0", "3x3 png"),
    "cmd-up2": case_upsample(2),
    "cmd-up4": case_upsample(4),
    "cmd-batch": case_batch,
    "cmd-scaling": case_batch_scaling,
}
