"""Regenerate the README's command reference from `convcli --help` (tests keep them in sync).

python scripts/readme.py          # rewrite README.md in place
python scripts/readme.py --check  # exit 1 when README.md is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convcli.cli.app import cli  # noqa: E402

COMMANDS = ([], ["apply"], ["upsample"], ["shape"], ["kernels"])
BLOCK = re.compile(r"(<!-- reference -->\n).*?(<!-- /reference -->)", re.S)


def help_text(command: list[str]) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], prog_name="convcli", terminal_width=96)
    return result.output.rstrip() + "\n"


def reference() -> str:
    parts = []
    for command in COMMANDS:
        title = " ".join(["convcli", *command])
        parts.append(f"### `{title}`\n\n```text\n{help_text(command)}```\n")
    return "\n".join(parts)


def updated(readme: str) -> str:
    if "<!-- /reference -->" not in readme:
        readme = readme.replace("<!-- reference -->", "<!-- reference -->\n<!-- /reference -->")
    return BLOCK.sub(lambda m: m.group(1) + reference() + m.group(2), readme)


def main() -> int:
    path = ROOT / "README.md"
    text = path.read_text()
    new = updated(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    path.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
