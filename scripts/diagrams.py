"""Make the convolution-arithmetic gallery: `convcli shape --diagram` for the classic cases.

    python scripts/diagrams.py

Each case is a real `convcli shape` command line, run twice: once for a static picture
(docs/diagrams/NAME.svg) and once for an animation (docs/diagrams/NAME.gif). The cases
are the ones Dumoulin & Visin draw in "A guide to convolution arithmetic for deep
learning" (their file names in brackets). docs/diagrams/README.md lists them with their
commands, and the README's two pictures between its <!-- diagrams --> markers are
rewritten.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "diagrams"

# (name, arguments of `convcli shape`, what it shows)
CASES = [
    ("no-padding", "4x4 -k 3x3", "no padding, no stride [no_padding_no_strides]"),
    ("padding", "5x5 -k 4x4 --padding 2", "padding 2 [arbitrary_padding_no_strides]"),
    ("same", "5x5 -k 3x3 --padding same", "padding 'same': the output keeps the input's size "
     "[same_padding_no_strides]"),
    ("same-even", "5x5 -k 4x4 --padding same", "'same' with an even kernel: the odd row and "
     "column of padding go at the bottom/right"),
    ("stride", "5x5 -k 3x3 --stride 2 --padding 1", "stride 2 with padding [padding_strides]"),
    ("stride-unread", "6x6 -k 3x3 --stride 2", "stride 2 that does not fit: input row and "
     "column 5 are never read (shaded; `convcli shape` warns about them)"),
    ("dilation", "7x7 -k 3x3 --dilation 2", "dilation 2 [dilation]"),
    ("reflect", "4x4 -k 3x3 --padding 2 --pad-mode reflect", "reflect padding: each padded cell "
     "names the input cell it copies"),
    ("transposed", "2x2 -k 3x3 --stride 2 --transpose", "transposed, stride 2: zeros between "
     "the input cells [no_padding_strides_transposed]"),
    ("transposed-padding", "2x2 -k 3x3 --stride 2 --padding 1 --output-padding 1 --transpose",
     "the seed's transposed example, 2x2 -> 4x4, with output_padding (orange)"),
    ("values", '4x4 -k "1 0 1; 0 1 0; 1 0 1" --values', "--values: each output's sum, as in "
     "the seed's worked example (a shape's numbers are 0, 1, 2, ...)"),
]  # fmt: skip
README_PICTURES = (("values", "gif"), ("transposed", "svg"))


def command(name: str, args: str, ext: str) -> str:
    return f"convcli shape {args} --diagram {name}.{ext}"


def run(name: str, args: str, ext: str) -> None:
    real = [sys.executable, "-m", "convcli", "shape", *shlex.split(args)]
    real += ["--diagram", str(OUT / f"{name}.{ext}")]
    subprocess.run(real, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Convolution arithmetic, drawn by convcli",
        "",
        "Made by `python scripts/diagrams.py` with the commands under each picture. The",
        "`.svg` is one picture (the kernel window at its first position); the `.gif` has one",
        "frame per output position. The cases are those of Dumoulin & Visin, *A guide to",
        "convolution arithmetic for deep learning* (their animation's name in brackets).",
        "",
    ]
    for name, args, what in CASES:
        for ext in ("svg", "gif"):
            run(name, args, ext)
        lines += [
            f"## {name}: {what}",
            "",
            f"![{name}]({name}.gif)",
            "",
            "```bash",
            command(name, args, "gif"),
            command(name, args, "svg"),
            "```",
            "",
        ]
    (OUT / "README.md").write_text("\n".join(lines))
    cases = {name: args for name, args, _ in CASES}
    block = ["| | |", "|---|---|"]
    block.append(
        " | ".join(["", *(f"![{n}](docs/diagrams/{n}.{e})" for n, e in README_PICTURES), ""])
    )
    block.append(
        " | ".join(["", *(f"`{command(n, cases[n], e)}`" for n, e in README_PICTURES), ""])
    )
    readme = ROOT / "README.md"
    text = readme.read_text()
    if "<!-- /diagrams -->" not in text:
        text = text.replace("<!-- diagrams -->", "<!-- diagrams -->\n<!-- /diagrams -->")
    text = re.sub(
        r"(<!-- diagrams -->\n).*?(<!-- /diagrams -->)",
        lambda m: m.group(1) + "\n".join(line.strip() for line in block) + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    readme.write_text(text)


if __name__ == "__main__":
    main()
