"""Planning a batch: which output each input goes to, and which inputs run together."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from pathlib import Path

from convcli.errors import ParameterError
from convcli.images.identities import file_identities, same_path
from convcli.images.output_paths import (
    FORMATS,
    check_output_directory,
    check_output_name,
    check_output_path,
    output_format_for,
)

TEMPLATE_KEYS = ("stem", "name", "ext", "index", "frame")


def _fields(output: str) -> list[tuple[str, str | None]]:
    """(literal text, field name or None) pairs of a template; only plain ``{field}``s.

    Templates are not Python format strings: a format spec, a conversion or an
    attribute or index access (``{stem:>9}``, ``{stem!r}``, ``{stem.upper}``) is a
    usage error, so a name can neither run code paths nor grow without bound.
    """
    known = ", ".join("{" + k + "}" for k in TEMPLATE_KEYS)
    try:
        parsed = list(string.Formatter().parse(output))
    except ValueError as err:
        raise ParameterError(f"output template {output!r} is malformed ({err})") from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (name not in TEMPLATE_KEYS or spec or conversion):
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise ParameterError(
                f"output template {output!r} has {shown}; only plain fields are allowed: {known}"
            )
        parts.append((literal, name))
    return parts


def is_template(output: str) -> bool:
    """True when ``output`` has ``{field}``s; anything but a plain known field is an error."""
    return any(name is not None for _, name in _fields(output))


def _fill(output: str, values: dict[str, str]) -> str:
    """The template with its fields filled; ``{frame}`` stays until frames are known."""
    return "".join(
        literal + ("" if name is None else values.get(name, "{" + name + "}"))
        for literal, name in _fields(output)
    )


def plan_outputs(
    inputs: Sequence[str],
    output: str,
    *,
    fmt: str | None = None,
    kernels: Sequence[str] = (),
) -> list[str]:
    """One output path (maybe still holding ``{frame}``) per input, checked before any work.

    ``-o DIR/`` (or an existing directory) writes ``DIR/<stem>.<ext>``; a template
    fills ``{stem}``, ``{name}``, ``{ext}``, ``{index}``; ``-`` is stdout for one input.
    No output may be an input or one of the ``kernels`` files, and standard input
    (``-``) can be named once only.

    Examples
    --------
    >>> plan_outputs(["a/x.png", "b/y.jpg"], "out/{stem}-{index}.png")
    ['out/x-0.png', 'out/y-1.png']
    """
    stdin_count = list(inputs).count("-")
    if stdin_count > 1:
        raise ParameterError(
            f"standard input ('-') is named {stdin_count} times among the inputs; it can be "
            f"read only once, so name it once (or save it to a file first)"
        )
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
    known = file_identities(inputs, kernels)
    for source, target in zip(inputs, targets, strict=True):
        key = os.path.realpath(target)
        if target != "-" and key in seen:
            raise ParameterError(
                f"inputs {seen[key]!r} and {source!r} would both be written to {target!r}; "
                f"add {{index}} to the output template, e.g. out/{{index}}-{{stem}}.png"
            )
        seen[key] = source
        output_format_for(frame_path(target, 0), fmt)
        check_output_path(target, inputs, kernels=kernels, known=known)
    return targets


def check_directories(targets: Sequence[str]) -> None:
    """Refuse outputs whose name is too long for the file system or whose directory is
    missing, a file or read-only (exit 1), before any input is read; each directory is
    looked at once."""
    seen = set()
    for target in targets:
        path = frame_path(target, 0)
        check_output_name(path)
        directory = os.path.dirname(path)
        if directory not in seen or os.path.isdir(path):
            check_output_directory(path)
        seen.add(directory)


def check_report_path(
    path: str | None,
    inputs: Sequence[str],
    targets: Sequence[str],
    *,
    kernels: Sequence[str] = (),
) -> None:
    """Refuse a ``--report`` file that is an input, a kernel file or one of the image
    outputs, or whose directory is missing; checked before it is opened (opening
    empties it)."""
    if path is None:
        return
    check_output_path(path, inputs, what="--report", kernels=kernels)
    if path == "-":
        return
    for target in targets:
        if same_path(path, target) or ("{frame}" in target and _matches_frames(path, target)):
            raise ParameterError(
                f"--report {path!r} is also an image output ({target!r}); give the report "
                f"another name, e.g. run.jsonl"
            )
    check_output_name(path)
    check_output_directory(path)


def check_frame_paths(
    paths: Sequence[str],
    inputs: Sequence[str],
    taken: set[str],
    *,
    kernels: Sequence[str] = (),
) -> None:
    """Refuse frame outputs (known once an image is read) that are an input or a
    kernel file, or in ``taken`` (real paths of the report and of frames written
    earlier in this run), or whose name or directory cannot be written (a directory of
    that name, a name too long, ``{frame}`` in a directory that is missing); call before
    filtering, so that no frame is written unless every one can be."""
    for path in paths:
        check_output_path(path, inputs, kernels=kernels)
        check_output_name(path)
        check_output_directory(path)
        if os.path.realpath(path) in taken:
            raise ParameterError(
                f"output {path!r} is written twice in this run (by another input's frames, "
                f"or it is the --report file); add {{index}} to the output template"
            )


def _matches_frames(path: str, target: str) -> bool:
    """True when ``path`` is ``target`` with some frame number for ``{frame}``."""
    parts = os.path.realpath(target).split("{frame}")
    pattern = "[0-9]+".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, os.path.realpath(path)) is not None


def _target(
    path: str, index: int, output: str, directory: bool, template: bool, fmt: str | None
) -> str:
    p = Path("stdin.png" if path == "-" else path)
    if template:
        values = {"stem": p.stem, "name": p.name, "ext": p.suffix.lstrip("."), "index": str(index)}
        output = _fill(output, values)
    if directory:
        suffix = f".{fmt.lower()}" if fmt else (p.suffix if p.suffix.lower() in FORMATS else ".png")
        return os.path.join(output, p.stem + suffix)
    return output


def frame_path(target: str, frame: int) -> str:
    """The output of one frame when the template names ``{frame}``."""
    return target.replace("{frame}", str(frame))
