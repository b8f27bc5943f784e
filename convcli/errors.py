"""The one exception hierarchy of convcli.

Every error the library raises on purpose is a :class:`ConvcliError`, itself a
``ValueError`` so that callers who only know NumPy conventions still catch it.
Each subclass carries the process exit code the command line uses for it:
2 for a usage error (a bad option, kernel or shape), 1 for an input or output
that could not be processed.

Messages name the parameter, the value and, where there is one, the fix::

    kernel 7x7 (dilation 1) does not fit the padded input 5x5
"""

from __future__ import annotations


class ConvcliError(ValueError):
    """Base class of every error convcli raises on purpose.

    Attributes
    ----------
    exit_code : int
        The exit status the command line reports for this error.
    """

    exit_code = 2


class ParameterError(ConvcliError):
    """An argument of a convolution or shape computation is invalid."""


class KernelError(ConvcliError):
    """A kernel spec, filter file or filter configuration is invalid."""


class ImageError(ConvcliError):
    """An input image could not be read, decoded or accepted."""

    exit_code = 1


class OutputError(ConvcliError):
    """An output could not be written (or writing it would harm an input)."""

    exit_code = 1


class ResourceError(ConvcliError):
    """A job would need more memory or pixels than allowed."""

    exit_code = 1


__all__ = [
    "ConvcliError",
    "ParameterError",
    "KernelError",
    "ImageError",
    "OutputError",
    "ResourceError",
]
