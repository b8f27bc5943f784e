"""What a job warns about when its result would be silently useless: derivative kernels
chained with ``-k ... -k ...`` (a second derivative where a gradient magnitude was
meant), a kernel whose gain clips most of an image, and what reading a spec found
doubtful (:attr:`~convcli.kernels.filters.Filter.warnings`). The steps' warnings are
known before any image is read; the clipping one once an image's report is.
"""

from __future__ import annotations

from collections.abc import Sequence

from convcli.errors import shown_name
from convcli.jobs.report import ImageReport
from convcli.jobs.step import Step, is_derivative, phase_warning

MOST = 0.5  # "most of the image": the clipped share above which a gain is named


def step_warnings(steps: Sequence[Step]) -> list[str]:
    """The warnings a job's steps give before any image is read: each filter's own
    (:attr:`Filter.warnings`), upsampling kernels whose stride phases do not sum to 1
    (flat areas change brightness), and two derivative kernels given one after the other.

    Examples
    --------
    >>> from convcli.kernels import load_filter
    >>> [w[:37] for w in step_warnings([Step(load_filter(k)) for k in ("sobel-x", "sobel-y")])]
    ['-k sobel-x then -k sobel-y: each -k f']
    """
    found = [warning for step in steps for warning in step.filter.warnings]
    found += [note for note in map(phase_warning, steps) if note]
    for first, then in zip(steps, steps[1:], strict=False):
        if is_derivative(first) and is_derivative(then):
            found.append(
                f"-k {_name(first)} then -k {_name(then)}: each -k filters the result of the "
                f"one before, so two derivative kernels make a second derivative, not an edge "
                f"strength; for the gradient magnitude use -k sobel (or scharr, prewitt), or "
                f'a filter file with "bank": [...] to combine your kernels\' responses by '
                f"magnitude"
            )
    return found


def clipping_warnings(record: ImageReport, steps: Sequence[Step]) -> list[str]:
    """A warning when most of an image's values were clipped and a kernel's sum (its gain
    on flat areas) is neither about 0 nor 1: a 5x5 binomial summing to 256 makes a white
    image. Names each such kernel, its sum, and ``--normalize``."""
    if record.clipped_share <= MOST:
        return []
    gains = []
    for step in steps:
        if step.transpose or step.normalize or step.filter.bank:
            continue
        weight = step.filter.weight
        sums = weight.reshape(len(weight), -1).sum(1) if weight.ndim == 4 else [weight.sum()]
        off = [float(s) for s in sums if abs(s - 1) > 1e-3 and abs(s) > 1e-9 * abs(weight).sum()]
        if off:
            shown = ", ".join(f"{s:.6g}" for s in off[:4]) + (", ..." if len(off) > 4 else "")
            gains.append(f"kernel {_name(step)} sums to {shown}")
    if not gains:
        return []
    which = "it" if len(gains) == 1 else "each kernel"
    return [
        f"{shown_name(record.input)}: "
        f"{100 * record.clipped_share:.2f}% of the values were clipped: "
        f"{'; '.join(gains)}, which scales what it filters by that much; --normalize "
        f"divides {which} by its sum"
    ]


def _name(step: Step) -> str:
    return shown_name(step.filter.source or "the kernel")
