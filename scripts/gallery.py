"""Make the README gallery: run convcli on the sample images, keep small previews.

    python scripts/gallery.py

Each example is a real `convcli` command line (shown under its picture); the
results are downscaled to 256 pixels wide into docs/gallery/ and the README's
gallery table is rewritten between its markers.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "gallery"
WIDTH = 256

# (name, input, arguments after the input)
EXAMPLES = [
    ("original", "astronaut.png", None),
    ("gaussian", "astronaut.png", ["-k", "gaussian:15,4"]),
    ("sobel", "camera.png", ["-k", "sobel-x", "--range", "abs"]),
    ("emboss", "camera.png", ["-k", "emboss"]),
    ("unsharp", "chelsea.png", ["-k", "filters/unsharp.json"]),
    ("motion", "chelsea.png", ["-k", "motion:21", "--pad-mode", "replicate"]),
    (
        "luma-edges",
        "coffee.png",
        ["-k", "filters/luma.toml", "-k", "edge", "--range", "abs"],
    ),
    ("sobel-xy", "coffee.png", ["-k", "filters/sobel-xy.json", "-o", "{tmp}/sobel-xy.npy"]),
]


def run(name: str, source: str, args: list[str] | None, tmp: Path) -> tuple[Path, str]:
    image = ROOT / "sample_images" / source
    if args is None:
        return image, f"sample_images/{source}"
    out = tmp / f"{name}.png"
    command = ["convcli", "apply", f"sample_images/{source}", *args, "-o", f"{name}.png"]
    real = [
        sys.executable,
        "-m",
        "convcli",
        "apply",
        str(image),
        *[a.replace("{tmp}", str(tmp)) for a in args],
    ]
    if "-o" not in args:
        real += ["-o", str(out)]
    else:  # a 2-channel result: show the channels side by side as gray
        command = [c.replace("{tmp}/", "") for c in command[:-2]]
    subprocess.run([*real, "-q"], cwd=ROOT, check=True)
    if not out.exists():
        import numpy as np

        data = np.load(tmp / f"{name}.npy")
        tiles = np.concatenate(list(np.clip(np.abs(data - 0.5) * 2, 0, 1)), axis=1)
        Image.fromarray((tiles * 255).astype("uint8")).save(out)
    return out, " ".join(shlex.quote(c) if " " in c else c for c in command)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, source, args in EXAMPLES:
            path, command = run(name, source, args, Path(tmp))
            with Image.open(path) as im:
                im = im.convert("RGB" if im.mode not in ("L",) else "L")
                height = (
                    round(im.height * WIDTH / im.width)
                    if im.width <= 2 * im.height
                    else (round(im.height * 2 * WIDTH / im.width))
                )
                width = WIDTH if im.width <= 2 * im.height else 2 * WIDTH
                im.resize((width, height), Image.LANCZOS).save(OUT / f"{name}.jpg", quality=82)
            cells.append((name, command))
    rows = ["| | |", "|---|---|"]
    for left, right in zip(cells[::2], cells[1::2], strict=True):
        rows.append(
            " | ".join(
                ["", *(f"![{n}](docs/gallery/{n}.jpg)" for n, _ in (left, right)), ""]
            ).strip()
        )
        rows.append(" | ".join(["", *(f"`{c}`" for _, c in (left, right)), ""]).strip())
    table = "\n".join(rows)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if "<!-- /gallery -->" not in text:
        text = text.replace("<!-- gallery -->", "<!-- gallery -->\n<!-- /gallery -->")
    text = re.sub(
        r"(<!-- gallery -->\n).*?(<!-- /gallery -->)",
        lambda m: m.group(1) + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    readme.write_text(text)


if __name__ == "__main__":
    main()
