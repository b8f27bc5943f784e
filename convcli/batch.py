"""Planning a batch: which output each input goes to, and which inputs run together."""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path

from convcli.errors import ParameterError
from convcli.outputs import FORMATS, check_output_path, output_format_for

TEMPLATE_KEYS = ("stem", "name", "ext", "index", "frame")


class _Fields(dict):
    """Template values; ``{frame}`` survives until frames are known."""

    def __missing__(self, key: str) -> str:
        if key == "frame":
            return "{frame}"
        fields = ", ".join("{" + k + "}" for k in TEMPLATE_KEYS)
        raise ParameterError(f"output template has {{{key}}}; the fields are {fields}")


def is_template(output: str) -> bool:
    """True when ``output`` has ``{field}``s (unknown ones are reported when filled)."""
    try:
        return any(name is not None for _, name, _, _ in string.Formatter().parse(output))
    except ValueError as err:
        raise ParameterError(f"output template {output!r} is malformed ({err})") from None


def plan_outputs(inputs: Sequence[str], output: str, *, fmt: str | None = None) -> list[str]:
    """One output path (maybe still holding ``{frame}``) per input, checked before any work.

    ``-o DIR/`` (or an existing directory) writes ``DIR/<stem>.<ext>``; a template
    fills ``{stem}``, ``{name}``, ``{ext}``, ``{index}``; ``-`` is stdout for one input.

    Examples
    --------
    >>> plan_outputs(["a/x.png", "b/y.jpg"], "out/{stem}-{index}.png")
    ['out/x-0.png', 'out/y-1.png']
    """
    if output == "-":
        if len(inputs) > 1:
            raise ParameterError("-o - (stdout) takes one input; use -o DIR/ or a template")
        targets = ["-"]
    else:
        directory = output.endswith(("/", os.sep)) or os.path.isdir(output)
        template = is_template(output)
        if len(inputs) > 1 and not directory and not template:
            raise ParameterError(
                f"{len(inputs)} inputs need -o DIR/ or a template such as out/{{stem}}.png, "
                f"not the single file {output!r}"
            )
        targets = [
            _target(path, index, output, directory, template, fmt)
            for index, path in enumerate(inputs)
        ]
    seen: dict[str, str] = {}
    for source, target in zip(inputs, targets, strict=True):
        if target != "-" and target in seen:
            raise ParameterError(
                f"inputs {seen[target]!r} and {source!r} would both be written to {target!r}; "
                f"add {{index}} to the output template, e.g. out/{{index}}-{{stem}}.png"
            )
        seen[target] = source
        output_format_for(target.replace("{frame}", "0"), fmt)
        check_output_path(target, inputs)
    return targets


def _target(
    path: str, index: int, output: str, directory: bool, template: bool, fmt: str | None
) -> str:
    p = Path("stdin.png" if path == "-" else path)
    if directory:
        suffix = f".{fmt.lower()}" if fmt else (p.suffix if p.suffix.lower() in FORMATS else ".png")
        return os.path.join(output, p.stem + suffix)
    if template:
        fields = _Fields(stem=p.stem, name=p.name, ext=p.suffix.lstrip("."), index=index)
        try:
            return output.format_map(fields)
        except (ValueError, IndexError) as err:
            raise ParameterError(f"output template {output!r} is malformed ({err})") from None
    return output


def frame_path(target: str, frame: int) -> str:
    """The output of one frame when the template names ``{frame}``."""
    return target.replace("{frame}", str(frame))
