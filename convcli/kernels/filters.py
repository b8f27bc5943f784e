"""The one :class:`Filter` every kernel source ends in (named kernels, inline matrices,
files, filter configurations), and :func:`filter_bank`, which joins filters into a bank
whose responses combine value by value. Loading specs is :mod:`convcli.kernels.loader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from convcli.errors import KernelError

COMBINE = ("magnitude", "abs-sum")  # how a bank's responses combine


@dataclass(frozen=True)
class Filter:
    """A filter from any source: weight, optional bias, options from a config file.

    ``weight`` is float64 with 2 (Hf, Wf), 3 (C, Hf, Wf) or 4 (F, C/groups, Hf, Wf)
    dimensions; ``options`` holds validated ``stride``, ``padding``, ``dilation``,
    ``groups``, ``pad_mode``, ``flip``, ``normalize`` from a configuration file;
    ``files`` are the files it was read from (a configuration and the weight file it
    names), which outputs must never overwrite.

    A filter bank (``sobel``, or a file's ``"bank"``) has its weights in ``bank``: each
    filters the same input and the responses combine value by value by ``combine``:
    ``"magnitude"``, ``sqrt(r_1**2 + ... + r_K**2)``, or ``"abs-sum"``,
    ``|r_1| + ... + |r_K|``; then the bias is added. They share one shape, so ``weight``
    (the first) stands for all of them where only the shape counts. ``warnings`` are
    what reading the spec found doubtful (a one-row matrix that looks meant as a square).
    ``offcentre`` is (matrix, (x, y) origin) as a source with an origin off the centre
    gave it (ImageMagick's Comet); ``weight`` is that matrix padded to centre the origin.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    source: str = ""
    files: tuple[str, ...] = ()
    bank: tuple[np.ndarray, ...] = ()
    combine: str = "magnitude"
    warnings: tuple[str, ...] = ()
    offcentre: tuple[np.ndarray, tuple[int, int]] | None = None

    @property
    def weights(self) -> tuple[np.ndarray, ...]:
        """Every weight whose response counts: the bank's, or the one ``weight``."""
        return self.bank or (self.weight,)

    def __reduce__(self):
        # Sent to cluster workers with the job: the read-only options (a mappingproxy,
        # which does not pickle) travel as a dict.
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["options"] = dict(self.options)
        return _unpickled_filter, (values,)


def _unpickled_filter(values: dict) -> Filter:
    return Filter(**{**values, "options": MappingProxyType(values["options"])})


def filter_bank(
    members: list[Filter], where: str, *, combine: str = "magnitude", **fields
) -> Filter:
    """A bank of the members' weights whose responses combine by ``combine`` (a member
    that is a bank with the same rule adds its own weights: the magnitude of magnitudes
    is one magnitude).

    Members share one shape and carry no bias or options of their own, which would
    apply to one response only; ``fields`` (bias, options, ...) are the bank's.

    Examples
    --------
    >>> bank = filter_bank([Filter(np.eye(3)), Filter(np.ones((3, 3)))], "bank")
    >>> len(bank.bank), bank.weight.shape, bank.combine
    (2, (3, 3), 'magnitude')
    """
    if not members:
        raise KernelError(
            f"{where}: the bank is empty; list the kernels whose responses it combines"
        )
    weights: list[np.ndarray] = []
    for member in members:
        name = member.source or "a member"
        if member.bias is not None or member.options:
            held = ", ".join(["bias"] * (member.bias is not None) + list(member.options))
            raise KernelError(
                f"{where}: bank member {name} sets {held}, which would apply to its own "
                f"response only; give them to the bank instead"
            )
        if member.bank and member.combine != combine:
            raise KernelError(
                f"{where}: bank member {name} combines its responses by {member.combine}, "
                f"the bank by {combine}; list its kernels in the bank instead"
            )
        weights.extend(member.weights)
    shapes = {w.shape for w in weights}
    if len(shapes) > 1:
        shown = ", ".join(
            "x".join(map(str, shape)) for shape in dict.fromkeys(w.shape for w in weights)
        )
        raise KernelError(
            f"{where}: the bank's kernels have different shapes ({shown}); their responses "
            f"are combined value by value, so give them one shape (pad a small kernel with "
            f"zeros around it)"
        )
    warnings = tuple(w for member in members for w in member.warnings)
    return Filter(weights[0], bank=tuple(weights), combine=combine, warnings=warnings, **fields)
