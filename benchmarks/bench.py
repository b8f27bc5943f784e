"""Speed and memory of convcli against the peers people use today.

Runs the cases of the speed issue on convcli and on every peer that is
installed: scipy.ndimage and OpenCV (``pip install -e '.[bench]'``), PyTorch
(if importable), and the ``vips`` and ImageMagick commands (if on PATH).
Prints one table of times and ratios and writes it as JSON and Markdown.

    python benchmarks/bench.py                 # every case, best of 5
    python benchmarks/bench.py --quick         # smaller sizes, a smoke run
    python benchmarks/bench.py --cases dw3,dense --repeat 3
    python benchmarks/bench.py --readme        # and put the table into README.md

Timing lives here only, never in the tests. Every comparison first checks
that both sides compute the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from common import ROOT, Row, find_command

sys.path.insert(0, str(ROOT))

from commands import COMMAND_CASES  # noqa: E402

from convcli import conv2d, conv2d_backward, conv_transpose2d  # noqa: E402

try:
    import scipy.ndimage as ndi
except ImportError:
    ndi = None
try:
    import cv2
except ImportError:
    cv2 = None
try:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
except ImportError:
    torch = None


def best_ms(func: Callable[[], object], repeat: int) -> float:
    func()  # warm-up: imports, thread pool, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def check_same(ours: np.ndarray, theirs: np.ndarray, what: str, tol: float = 1e-4) -> None:
    theirs = np.asarray(theirs, dtype=np.float64).reshape(ours.shape)
    scale = max(1.0, float(np.abs(theirs).max()))
    error = float(np.abs(ours - theirs).max()) / scale
    if error > tol:
        raise SystemExit(f"{what}: results differ by {error:.2e} of scale; not comparable")


def depthwise_peers(x: np.ndarray, w: np.ndarray, ours: np.ndarray, repeat: int) -> dict:
    """Per-channel correlation with zero borders, as OpenCV, SciPy and torch do it.

    Each peer allocates one (N, C, H, W) result per call and writes each channel
    into it, as convcli does: no extra stacking copy on either side.
    """
    peers = {}
    pad = w.shape[-1] // 2
    if cv2 is not None:

        def run_cv():
            out = np.empty_like(x)
            for c in range(x.shape[1]):
                cv2.filter2D(x[0, c], -1, w[c, 0], dst=out[0, c], borderType=cv2.BORDER_CONSTANT)
            return out

        check_same(ours, run_cv(), "opencv")
        peers["opencv"] = best_ms(run_cv, repeat)
    if ndi is not None:

        def run_ndi():
            out = np.empty_like(x)
            for c in range(x.shape[1]):
                ndi.correlate(x[0, c], w[c, 0], output=out[0, c], mode="constant")
            return out

        check_same(ours, run_ndi(), "scipy")
        peers["scipy"] = best_ms(run_ndi, max(1, repeat // 2))
    if torch is not None:
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)

        def run_torch():
            return F.conv2d(xt, wt, padding=pad, groups=x.shape[1])

        check_same(ours, run_torch().numpy(), "torch")
        peers["torch"] = best_ms(run_torch, max(1, repeat // 2))
    return peers


def case_depthwise(
    name: str, shape, k: int, repeat: int, target: str, peer: str, limit: float
) -> Row:
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    w = rng.random((shape[1], 1, k, k), dtype=np.float32)
    ours = conv2d(x, w, padding="same", groups=shape[1])
    ms = best_ms(lambda: conv2d(x, w, padding="same", groups=shape[1]), repeat)
    peers = depthwise_peers(x, w, ours, repeat)
    ratio = ms / peers[peer] if peer in peers else None
    return Row(name, ms, peers, target, ratio, None if ratio is None else ratio <= limit)


def case_dw3(repeat: int, quick: bool) -> list[Row]:
    size = 1024 if quick else 4096
    row = case_depthwise(
        "dw3", (1, 3, size, size), 3, repeat, "<= 1.5x opencv, <= 0.25x scipy", "opencv", 1.5
    )
    if "scipy" in row.peers:
        row.note = f"{row.ours_ms / row.peers['scipy']:.2f}x scipy"
        row.met = bool(row.met) and row.ours_ms / row.peers["scipy"] <= 0.25
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, size, size), dtype=np.float32)
    w = rng.random((3, 1, 3, 3), dtype=np.float32)
    stride2 = best_ms(lambda: conv2d(x, w, padding="same", groups=3, stride=2), repeat)
    ratio = stride2 / row.ours_ms
    return [
        row,
        Row(
            "dw3 stride 2",
            stride2,
            {"convcli s1": row.ours_ms},
            "<= 0.5x our stride 1",
            ratio,
            ratio <= 0.5,
        ),
    ]


def case_dw15(repeat: int, quick: bool) -> list[Row]:
    size = 512 if quick else 2048
    return [case_depthwise("dw15", (1, 3, size, size), 15, repeat, "<= 1.5x opencv", "opencv", 1.5)]


def case_dw31(repeat: int, quick: bool) -> list[Row]:
    size = 512 if quick else 2048
    return [case_depthwise("dw31", (1, 1, size, size), 31, repeat, "<= 1.5x opencv", "opencv", 1.5)]


def _torch_case(name, x, w, padding, repeat, target, limit, ours_fn, torch_fn) -> Row:
    ours = ours_fn()
    ms = best_ms(ours_fn, repeat)
    peers = {}
    if torch is not None:
        check_same(
            np.asarray(ours[0] if isinstance(ours, tuple) else ours), _first(torch_fn()), "torch"
        )
        peers["torch"] = best_ms(torch_fn, repeat)
    ratio = ms / peers["torch"] if peers else None
    return Row(name, ms, peers, target, ratio, None if ratio is None else ratio <= limit)


def _first(value):
    if isinstance(value, tuple):
        value = value[0]
    return value.detach().numpy() if hasattr(value, "detach") else value


def case_dense(repeat: int, quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    n = 2 if quick else 8
    x = rng.random((n, 64, 128, 128), dtype=np.float32)
    w = rng.random((64, 64, 3, 3), dtype=np.float32)
    xt = torch.from_numpy(x) if torch else None
    wt = torch.from_numpy(w) if torch else None
    rows = [
        _torch_case(
            "dense",
            x,
            w,
            1,
            repeat,
            "<= 1.3x torch",
            1.3,
            lambda: conv2d(x, w, padding=1),
            lambda: F.conv2d(xt, wt, padding=1),
        )
    ]
    g = rng.random((n, 64, 128, 128), dtype=np.float32)

    def torch_backward():
        xr = xt.clone().requires_grad_()
        wr = wt.clone().requires_grad_()
        F.conv2d(xr, wr, padding=1).backward(torch.from_numpy(g))
        return xr.grad

    rows.append(
        _torch_case(
            "backward",
            x,
            w,
            1,
            repeat,
            "<= 1.5x torch fwd+bwd",
            1.5,
            lambda: conv2d_backward(g, x, w, padding=1),
            torch_backward if torch else None,
        )
    )
    return rows


def case_rgb16(repeat: int, quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    size = 512 if quick else 2048
    x = rng.random((1, 3, size, size), dtype=np.float32)
    w = rng.random((16, 3, 5, 5), dtype=np.float32)
    xt = torch.from_numpy(x) if torch else None
    wt = torch.from_numpy(w) if torch else None
    return [
        _torch_case(
            "rgb->16",
            x,
            w,
            2,
            repeat,
            "<= 1.0x torch",
            1.0,
            lambda: conv2d(x, w, padding=2),
            lambda: F.conv2d(xt, wt, padding=2),
        )
    ]


def case_transpose(repeat: int, quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    size = 256 if quick else 1024
    x = rng.random((1, 3, size, size), dtype=np.float32)
    w = rng.random((3, 1, 4, 4), dtype=np.float32)
    xt = torch.from_numpy(x) if torch else None
    wt = torch.from_numpy(w) if torch else None
    return [
        _torch_case(
            "transpose",
            x,
            w,
            1,
            repeat,
            "<= 0.5x torch",
            0.5,
            lambda: conv_transpose2d(x, w, stride=2, padding=1, groups=3),
            lambda: F.conv_transpose2d(xt, wt, stride=2, padding=1, groups=3),
        )
    ]


def seed_loops(x, w, b, pad, stride):
    """The seed tutorial's forward pass, in Python 3 (its maths, not its typos)."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    n_, _, h, w_ = x.shape
    f_, _, hf, wf = w.shape
    h_out = 1 + (h + 2 * pad - hf) // stride
    w_out = 1 + (w_ + 2 * pad - wf) // stride
    y = np.zeros((n_, f_, h_out, w_out))
    for n in range(n_):
        for f in range(f_):
            for i_ in range(h_out):
                for j_ in range(w_out):
                    i, j = i_ * stride, j_ * stride
                    y[n, f, i_, j_] = np.sum(x_pad[n][:, i : i + hf, j : j + wf] * w[f]) + b[f]
    return y


def case_seed(repeat: int, quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3, 32, 32))
    w = rng.standard_normal((1, 3, 5, 5))
    b = rng.standard_normal(1)
    check_same(conv2d(x, w, b, padding=2), seed_loops(x, w, b, 2, 1), "seed loops", 1e-9)
    ours = best_ms(lambda: conv2d(x, w, b, padding=2), repeat * 4)
    loops = best_ms(lambda: seed_loops(x, w, b, 2, 1), 1)
    speedup = loops / ours
    return [
        Row(
            "seed",
            ours,
            {"seed loops": loops},
            ">= 40x faster than the seed",
            speedup,
            speedup >= 40,
            f"{speedup:.0f}x faster",
        )
    ]


def case_scaling(repeat: int, quick: bool) -> list[Row]:
    sizes = [256, 512, 1024] if quick else [512, 1024, 2048, 4096, 8192]
    w = np.random.default_rng(0).random((3, 1, 3, 3), dtype=np.float32)
    per_pixel = {}
    for size in sizes:
        x = np.ones((1, 3, size, size), np.float32)
        # About the same total time per size: small images need many runs to see past noise.
        runs = min(200, max(repeat, (1 << 24) // (size * size)))
        ms = best_ms(lambda x=x: conv2d(x, w, padding="same", groups=3), runs)
        per_pixel[f"{size}^2 ns/px"] = 1e6 * ms / (3 * size * size)
    values = list(per_pixel.values())
    ratio = max(values) / min(values)
    return [
        Row(
            "scaling",
            0.0,
            per_pixel,
            "ns/px flat within 1.5x",
            ratio,
            ratio <= 1.5,
            f"max/min {ratio:.2f}",
        )
    ]


def case_memory(repeat: int, quick: bool) -> list[Row]:
    size = 2048 if quick else 8192
    x = np.ones((1, 3, size, size), np.float32)
    w = np.ones((3, 1, 3, 3), np.float32)
    tracemalloc.start()
    start = time.perf_counter()
    y = conv2d(x, w, padding="same", groups=3)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # scratch buffers live per thread across calls: count them as this call's too
    from convcli.conv.engines import tiles

    scratch = sum(b.nbytes for b in tiles._local.__dict__.get("buffers", {}).values())
    extra = (peak - y.nbytes + scratch * (os.cpu_count() or 1)) / (x.nbytes + y.nbytes)
    return [
        Row(
            "memory",
            1000 * seconds,
            {},
            "peak extra <= 25% of input+output",
            extra,
            extra <= 0.25,
            f"{100 * extra:.1f}% extra",
        )
    ]


def _wall_ms(args: list[str], repeat: int) -> float:
    subprocess.run(args, check=True, capture_output=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def case_end_to_end(repeat: int, quick: bool) -> list[Row]:
    from PIL import Image

    size = 1024 if quick else 4096
    tmp = Path(tempfile.mkdtemp(prefix="convcli-bench-"))
    source = Image.open(ROOT / "sample_images" / "astronaut.png").convert("RGB")
    tiles = size // 512
    big = Image.new("RGB", (size, size))
    for i in range(tiles):
        for j in range(tiles):
            big.paste(source, (512 * i, 512 * j))
    image = tmp / "big.png"
    big.save(image, compress_level=1)
    convcli = [sys.executable, "-m", "convcli"]
    ours = _wall_ms(
        [
            *convcli,
            "apply",
            str(image),
            "-k",
            "box:3",
            "--pad-mode",
            "replicate",
            "-q",
            "-o",
            str(tmp / "ours.png"),
        ],
        repeat,
    )
    peers = {}
    vips = find_command("vips")
    if vips:
        (tmp / "box.mat").write_text("3 3 9 0\n1 1 1\n1 1 1\n1 1 1\n")
        peers["vips"] = _wall_ms(
            [
                vips,
                "conv",
                str(image),
                str(tmp / "vips.png"),
                str(tmp / "box.mat"),
                "--precision",
                "float",
            ],
            repeat,
        )
    magick = find_command("magick", "convert")
    if magick:
        peers["imagemagick"] = _wall_ms(
            [
                magick,
                str(image),
                "-define",
                "convolve:scale=1",
                "-morphology",
                "Convolve",
                "3x3:1,1,1,1,1,1,1,1,1",
                "-define",
                "convolve:scale=!",
                str(tmp / "im.png"),
            ],
            repeat,
        )
    shutil.rmtree(tmp, ignore_errors=True)
    ratio = ours / peers["vips"] if "vips" in peers else None
    met = None
    note = ""
    if ratio is not None:
        met = ratio <= 1.3
    if "imagemagick" in peers:
        im_ratio = ours / peers["imagemagick"]
        note = f"{im_ratio:.2f}x imagemagick"
        met = (met if met is not None else True) and im_ratio <= 0.3
    return [Row("end to end", ours, peers, "<= 1.3x vips, <= 0.3x imagemagick", ratio, met, note)]


def case_startup(repeat: int, quick: bool) -> list[Row]:
    ms = _wall_ms([sys.executable, "-m", "convcli", "--help"], repeat)
    return [Row("start-up", ms, {}, "convcli --help under 300 ms", ms, ms < 300)]


CASES = {
    "dw3": case_dw3,
    "dw15": case_dw15,
    "dw31": case_dw31,
    "dense": case_dense,
    "rgb16": case_rgb16,
    "transpose": case_transpose,
    "seed": case_seed,
    "scaling": case_scaling,
    "memory": case_memory,
    "e2e": case_end_to_end,
    "startup": case_startup,
    **COMMAND_CASES,
}


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "opencv": getattr(cv2, "__version__", None),
        "opencv_threads": cv2.getNumThreads() if cv2 is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(rows: list[Row], info: dict) -> str:
    # Per-pixel and per-file figures go in convcli's cell, not in a peer's column.
    own = ("ns/px", "ms/file")
    peers = sorted({p for r in rows for p in r.peers if not p.endswith(own)})
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"NumPy {info['numpy']}, torch {info['torch']} ({info['torch_threads']} threads), "
        f"OpenCV {info['opencv']} ({info['opencv_threads']} threads), {info['date']}. "
        f"Times are best-of-N wall-clock milliseconds; convcli uses every core.",
        "",
        "| case | convcli ms | "
        + " | ".join(f"{p} ms" for p in peers)
        + " | target | ratio | met |",
        "|---|---:|" + "---:|" * len(peers) + "---|---:|---|",
    ]
    for r in rows:
        cells = [f"{r.peers[p]:.1f}" if p in r.peers else "" for p in peers]
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        met = {True: "yes", False: "no", None: "n/a"}[r.met]
        extra = f" ({r.note})" if r.note else ""
        ours = f"{r.ours_ms:.1f}" if r.ours_ms else ""
        if r.case == "scaling":
            ours = ", ".join(f"{k.split()[0]}: {v:.2f}" for k, v in r.peers.items()) + " ns/px"
            cells = [""] * len(peers)
        elif any(k.endswith("ms/file") for k in r.peers):
            ours = ", ".join(f"{k.split()[0]}: {v:.1f}" for k, v in r.peers.items()) + " ms/file"
            cells = [""] * len(peers)
        lines.append(
            f"| {r.case} | {ours} | "
            + " | ".join(cells)
            + f" | {r.target} | {ratio}{extra} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--markdown", default=str(ROOT / "benchmarks" / "results.md"))
    parser.add_argument(
        "--readme", action="store_true", help="also put the table into README.md's bench block"
    )
    parser.add_argument(
        "--render", action="store_true", help="only make the table again from the JSON file"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.json).read_text())
        rows, info = [Row(**r) for r in saved["rows"]], saved["machine"]
    else:
        rows = []
        for name in args.cases.split(","):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += CASES[name.strip()](args.repeat, args.quick)
        info = machine()
        Path(args.json).write_text(
            json.dumps(
                {"machine": info, "quick": args.quick, "rows": [asdict(r) for r in rows]},
                indent=1,
            )
        )
    table = markdown(rows, info)
    print(table)
    Path(args.markdown).write_text(table + "\n")
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- bench-table -->", "<!-- /bench-table -->"
        if end not in text:
            text = text.replace(start, f"{start}\n{end}")
        head, rest = text.split(start, 1)
        readme.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
