"""ImageMagick's convolution kernels, reached as ``im:NAME[:ARGS]``: ``im:Gaussian:0x2``,
``im:Sobel:90``, ``im:Comet:0x2``, ``im:Laplacian:5``, ...

Each is the matrix that ImageMagick 6 prints for ``convert xc: -define
morphology:showKernel=1 -morphology Convolve:1 NAME null:``, built as its kernel
generators document them (MagickCore's morphology.c): the geometry arguments
``radius x sigma + angle``, the size from sigma when the radius is 0 (the first width
whose edge value falls below one 16-bit level), the normalisation of each kind (blurs
sum to 1, LoG and DoG have positives summing to 1 and negatives to -1, the named
3x3 edge kernels are left as they are), and the rotations by 45, 90 and 180 degrees.

ImageMagick's origin can sit off-centre (Comet's is its first value);
:func:`imagemagick_kernel` returns it with the matrix, and the loader centres it.
Multi-kernel lists (``FreiChen:10``, ``;``-separated kernels, the ``@ < >`` rotation
flags) are refused: convcli applies one kernel per ``-k``.
"""

from __future__ import annotations

import difflib
import math
import re

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.imagemagick_builders import EPSILON, ROUND, build, rotate
from convcli.kernels.parsers import IMAGEMAGICK, parse_imagemagick
from convcli.kernels.shaping import centre_origin
from convcli.kernels.values import NUMBER, as_number, as_weight_array

NAMES = (
    "Unity", "Gaussian", "DoG", "LoG", "Blur", "Comet", "Binomial", "Laplacian", "Sobel",
    "Roberts", "Prewitt", "Compass", "Kirsch", "FreiChen",
)  # fmt: skip
_NAMES = {name.lower(): name for name in NAMES}
_SHAPES = {
    "diamond", "square", "rectangle", "octagon", "disk", "plus", "cross", "ring", "peaks",
    "edges", "corners", "diagonals", "lineends", "linejunctions", "ridges", "convexhull",
    "thinse", "skeleton", "chebyshev", "manhattan", "octagonal", "euclidean",
}  # fmt: skip


class Geometry:
    """ImageMagick's geometry arguments ``rho x sigma {+-,/} xi {+-,/} psi`` as
    ParseGeometry reads them for a kernel: absent values are 0, and ``given`` holds
    the names of those that were written."""

    _NUMBER = NUMBER.pattern

    def __init__(self, text: str, spec: str) -> None:
        self.rho = self.sigma = self.xi = self.psi = 0.0
        self.given: set[str] = set()
        rest = "".join(text.split())
        if not rest:
            return
        if set(rest) & set("@<>"):
            raise KernelError(
                f"kernel {spec!r}: the rotation flags @ < > make a list of rotated kernels; "
                f"convcli applies one kernel per -k, so give each angle as its own "
                f"(im:Sobel:45)"
            )
        number = re.match(self._NUMBER, rest)
        if number and rest[number.end() :][:1] in ("", "x", "X", ",", "/"):
            self.rho, rest = self._value(number.group(), spec), rest[number.end() :]
            self.given.add("rho")
        separator = rest[:1]
        if separator in ("x", "X", ",", "/"):
            rest = rest[1:]
            number = re.match(self._NUMBER, rest)
            # After 'x' a sign starts xi (an offset), not sigma: "0x+90" is rho 0, xi 90.
            if number and not (separator in "xX" and rest[:1] in "+-"):
                self.sigma, rest = self._value(number.group(), spec), rest[number.end() :]
                self.given.add("sigma")
        for name in ("xi", "psi"):
            if not rest or rest[0] not in "+-,/":
                break
            if rest[0] in ",/":
                rest = rest[1:]
            number = re.match(self._NUMBER, rest)
            if not number:
                break
            setattr(self, name, self._value(number.group(), spec))
            self.given.add(name)
            rest = rest[number.end() :]
        if rest:
            raise KernelError(
                f"kernel {spec!r}: cannot read the arguments {text!r}; ImageMagick writes "
                f"them as radius x sigma + angle, e.g. Gaussian:0x2, Blur:0x3+90, DoG:0,0,2"
            )
        # ParseGeometry reads "30x-20" as a negative height.
        if self.given == {"rho", "xi"} and self.xi < 0:
            self.sigma, self.xi = self.xi, 0.0
            self.given = {"rho", "sigma"}

    @staticmethod
    def _value(text: str, spec: str) -> float:
        """A finite argument: ``1e400`` is infinity in float64, and no kernel has an
        infinite radius, sigma or angle."""
        return as_number(text, f"kernel {spec!r}")


def imagemagick_spec(
    spec: str,
) -> tuple[np.ndarray, tuple[np.ndarray, tuple[int, int]] | None, str]:
    """What ``im:SPEC`` loads: (weight, (matrix, origin) when the origin was off-centre,
    description). ``SPEC`` is what ImageMagick takes after ``-morphology Convolve``: a
    named kernel (``im:Sobel:90``), a ``WxH:`` array, or its old-style list of k*k
    numbers (``im:1,2,1,2,4,2,1,2,1`` is 3x3). The weight is correlated as ImageMagick
    prints it (its ``-convolve`` and ``-morphology Correlate``); an off-centre origin
    (Comet's) is centred by padding with zeros, the matrix as printed kept to be shown.

    Examples
    --------
    >>> weight, offcentre, _ = imagemagick_spec("im:Comet:0x1")
    >>> weight.shape, offcentre[0].shape, offcentre[1]
    ((1, 9), (1, 5), (0, 0))
    """
    text = spec.strip()[3:].strip()
    label = ""
    if not text:
        raise KernelError(
            f"kernel {spec!r}: give an ImageMagick kernel after im: ({', '.join(_NAMES.values())}"
            f", or a WxH: array)"
        )
    if not text[:1].isalpha():
        if not IMAGEMAGICK.match(text):  # the old style: a square of values
            count = len([t for t in re.split(r"[\s,]+", text) if t])
            side = math.isqrt(count)
            if side * side != count:
                raise KernelError(
                    f"kernel {spec!r}: ImageMagick reads a plain list of numbers as a square "
                    f"kernel, so it needs 9, 25, 49, ... values (k*k); got {count}"
                )
            text = f"{side}x{side}:{text}"
        matrix, origin = parse_imagemagick(text), None
    else:
        matrix, origin, label = imagemagick_kernel(text)
    weight = matrix if origin is None else centre_origin(matrix, origin)
    weight = as_weight_array(weight, f"kernel {spec!r}")
    description = (
        f"ImageMagick's {label or 'kernel'}, correlated as shown (as its -convolve and "
        f"-morphology Correlate do); --flip rotates it 180 degrees, as -morphology Convolve"
    )
    offcentre = (matrix, origin) if weight.shape != matrix.shape else None
    return weight, offcentre, description


def imagemagick_kernel(spec: str) -> tuple[np.ndarray, tuple[int, int], str]:
    """ImageMagick's kernel for ``NAME[:ARGS]`` (``spec`` without the ``im:`` prefix,
    named in messages as ``im:...``): (matrix, (x, y) origin, IM's label such as
    ``Sobel@90 3x3+1+1``).

    Examples
    --------
    >>> matrix, origin, label = imagemagick_kernel("Sobel:90")
    >>> matrix.tolist(), origin, label
    ([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]], (1, 1), 'Sobel@90 3x3+1+1')
    >>> matrix, origin, _ = imagemagick_kernel("Comet:0x1")
    >>> matrix.shape, origin
    ((1, 5), (0, 0))
    """
    named = f"im:{spec}"
    if ";" in spec:
        raise KernelError(
            f"kernel {named!r}: a ';'-separated list makes several kernels; give each as its own -k"
        )
    name, _, arguments = spec.strip().partition(":")
    kind = name.strip().lower()
    if kind not in _NAMES:
        raise KernelError(_unknown(named, kind))
    g = Geometry(arguments, named)
    matrix, origin, angle = build(kind, g, named)
    if kind not in ROUND:
        matrix, origin, angle = rotate(matrix, origin, angle, kind, named)
    matrix = np.where(np.abs(matrix) < EPSILON, 0.0, matrix) + 0.0  # and no -0.0
    height, width = matrix.shape
    turned = f"@{angle:g}" if angle else ""
    return matrix, origin, f"{_NAMES[kind]}{turned} {width}x{height}+{origin[0]}+{origin[1]}"


def _unknown(named: str, kind: str) -> str:
    if kind in _SHAPES:
        return (
            f"kernel {named!r}: {kind} is one of ImageMagick's morphology shapes or distance "
            f"kernels, not a convolution kernel; im: takes {', '.join(_NAMES.values())}"
        )
    close = difflib.get_close_matches(kind, _NAMES, n=1)
    hint = f"did you mean im:{_NAMES[close[0]]}? " if close else ""
    return (
        f"kernel {named!r}: {hint}ImageMagick's convolution kernels are "
        f"{', '.join(_NAMES.values())}"
    )
