"""Speed and size of convcli's image codecs against the libraries that could do their job.

The figures behind the module docstrings of ``convcli/images/png.py`` (why convcli
keeps its own PNG writer) and ``convcli/images/tiff.py`` (TIFF through tifffile):

- PNG, 8-bit RGB at level 1: convcli's writer, Pillow, imagecodecs (libpng and
  libspng), OpenCV;
- TIFF, RGB deflate with the horizontal predictor at levels 1 and 6, 8 and 16 bits:
  convcli (tifffile, every core), tifffile on one thread, Pillow and OpenCV (libtiff);
- 16-bit PNG decoding (gray+alpha, RGB, RGBA): convcli (libpng through imagecodecs)
  and OpenCV.

The image is ``sample_images/astronaut.png`` scaled up (bicubic) to SIZE x SIZE: a
photograph, not noise. Every output is decoded again and compared with the input.

    python benchmarks/codecs.py              # 4096 x 4096, best of 3
    python benchmarks/codecs.py --size 1024 --repeat 1
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convcli.images import png, tiff  # noqa: E402
from convcli.images.reading import read_image  # noqa: E402
from convcli.images.writing import to_integers  # noqa: E402

try:
    import cv2
except ImportError:
    cv2 = None


def photo(size: int, channels: int = 3, depth: int = 8) -> np.ndarray:
    """astronaut.png scaled up to (size, size, channels), 8- or 16-bit."""
    source = np.asarray(Image.open(ROOT / "sample_images" / "astronaut.png").convert("RGBA"))
    planes = [
        np.asarray(Image.fromarray(source[..., c].astype(np.float32)).resize((size, size), 3))
        for c in range(channels)
    ]
    values = np.stack(planes, -1) * (257 if depth == 16 else 1)
    return np.clip(np.rint(values), 0, 65535 if depth == 16 else 255).astype(
        np.uint16 if depth == 16 else np.uint8
    )


def best(func: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def _tiff_tifffile(values: np.ndarray, level: int, threads: int) -> bytes:
    import tifffile

    out = io.BytesIO()
    rows = max(1, (1 << 18) // (values.shape[1] * values.shape[2] * values.itemsize))
    options = {"compressionargs": {"level": level}, "predictor": True, "maxworkers": threads}
    tifffile.imwrite(
        out, values, photometric="rgb", compression="zlib", rowsperstrip=rows, **options
    )
    return out.getvalue()


def png_writers(values: np.ndarray) -> dict[str, Callable[[], bytes]]:
    import imagecodecs

    def ours() -> bytes:
        out = io.BytesIO()
        png.write_png(values, out, compress_level=1)
        return out.getvalue()

    def pillow() -> bytes:
        out = io.BytesIO()
        Image.fromarray(values).save(out, format="PNG", compress_level=1)
        return out.getvalue()

    writers = {
        "convcli": ours,
        "Pillow": pillow,
        "imagecodecs libpng": lambda: imagecodecs.png_encode(values, level=1),
        "imagecodecs libspng": lambda: imagecodecs.spng_encode(values, level=1),
    }
    if cv2 is not None:
        writers["OpenCV"] = lambda: cv2.imencode(
            ".png", values[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1]
        )[1].tobytes()
    return writers


def tiff_writers(values: np.ndarray, level: int) -> dict[str, Callable[[], bytes]]:
    def ours() -> bytes:
        out = io.BytesIO()
        tiff.write_tiff(values[None], out, compress_level=level)
        return out.getvalue()

    writers = {
        "convcli (tifffile, every core)": ours,
        "tifffile, 1 thread": lambda: _tiff_tifffile(values, level, 1),
    }
    if values.dtype == np.uint8:

        def pillow() -> bytes:
            out = io.BytesIO()
            Image.fromarray(values).save(out, format="TIFF", compression="tiff_adobe_deflate")
            return out.getvalue()

        writers["Pillow (libtiff, its default level, no predictor)"] = pillow
    if cv2 is not None:
        flags = [cv2.IMWRITE_TIFF_COMPRESSION, 8]
        writers["OpenCV (libtiff, its default level and predictor)"] = lambda: cv2.imencode(
            ".tif", values[..., ::-1], flags
        )[1].tobytes()
    return writers


def check_round_trip(data: bytes, values: np.ndarray, what: str) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"convcli-codecs-{os.getpid()}"
    path.write_bytes(data)
    try:
        img = read_image(str(path), max_pixels=values.shape[0] * values.shape[1])
        back = to_integers(img.pixels[0], 16 if values.dtype == np.uint16 else 8)
        if not np.array_equal(back.transpose(1, 2, 0), values):
            raise SystemExit(f"{what}: the output does not decode to the input")
    finally:
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size, repeat = args.size, args.repeat
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {size}x{size} astronaut.png scaled up; best of {repeat}\n"
    )
    rgb8 = photo(size)
    print("| PNG write, RGB 8-bit, level 1 | s | MB |\n|---|---:|---:|")
    for name, write in png_writers(rgb8).items():
        seconds, data = best(write, repeat)
        check_round_trip(data, rgb8, name)
        print(f"| {name} | {seconds:.2f} | {len(data) / 1e6:.1f} |")
    for depth in (8, 16):
        values = rgb8 if depth == 8 else photo(size, depth=16)
        for level in (1, 6):
            title = f"TIFF write, RGB {depth}-bit, deflate level {level}"
            print(f"\n| {title} | s | MB |\n|---|---:|---:|")
            for name, write in tiff_writers(values, level).items():
                seconds, data = best(write, repeat)
                check_round_trip(data, values, name)
                print(f"| {name} | {seconds:.2f} | {len(data) / 1e6:.1f} |")
    half = size // 2
    print(f"\n| PNG read, 16-bit, {half}x{half} | convcli s | OpenCV s |\n|---|---:|---:|")
    for channels, kind in ((2, "gray+alpha"), (3, "RGB"), (4, "RGBA")):
        picked = [0, 3] if channels == 2 else slice(channels)
        values = photo(half, channels=4, depth=16)[..., picked]
        out = io.BytesIO()
        png.write_png(values, out, compress_level=6)
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"convcli-codecs-{os.getpid()}.png"
        path.write_bytes(out.getvalue())
        try:
            ours, img = best(lambda p=path: read_image(str(p)), repeat)
            if not np.array_equal(to_integers(img.pixels[0], 16).transpose(1, 2, 0), values):
                raise SystemExit(f"16-bit {kind} PNG: decoded values differ")
            theirs = best(lambda p=path: cv2.imread(str(p), cv2.IMREAD_UNCHANGED), repeat)[0]
        finally:
            path.unlink()
        print(f"| {kind} | {ours:.3f} | {theirs:.3f} |" if cv2 else f"| {kind} | {ours:.3f} | |")


if __name__ == "__main__":
    main()
