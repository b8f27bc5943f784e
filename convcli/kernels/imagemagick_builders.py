"""ImageMagick's kernel generators, as MagickCore's morphology.c documents them: the
blurs (Gaussian, DoG, LoG from a 2-D Gaussian; Blur and Comet sampled three times finer
and summed per tap), Binomial, the named 3x3 edge kernels, the Laplacian and FreiChen
tables, ImageMagick's normalisations, and RotateKernelInfo's 45, 90 and 180-degree turns.
:mod:`convcli.kernels.imagemagick` reads the spec and calls :func:`build` and
:func:`rotate`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.limits import MAX_TAPS

if TYPE_CHECKING:
    from convcli.kernels.imagemagick import Geometry

EPSILON = 1.0e-12  # MagickEpsilon
QUANTUM_SCALE = 1.0 / 65535.0  # one level of ImageMagick's Q16 build
MAX_WIDTH = MAX_TAPS  # convcli's largest kernel

# Kinds that RotateKernelInfo leaves alone: rotating a circle changes nothing.
ROUND = {"gaussian", "dog", "log", "laplacian", "binomial"}

_EDGES = {
    "sobel": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "roberts": [[0, 0, 0], [1, -1, 0], [0, 0, 0]],
    "prewitt": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "compass": [[1, 1, -1], [1, -2, -1], [1, 1, -1]],
    "kirsch": [[5, -3, -3], [5, 0, -3], [5, -3, -3]],
}
_LAPLACIANS = {
    0: [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    1: [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    2: [[-2, 1, -2], [1, 4, 1], [-2, 1, -2]],
    3: [[1, -2, 1], [-2, 4, -2], [1, -2, 1]],
    5: [[-4, -1, 0, -1, -4], [-1, 2, 3, 2, -1], [0, 3, 4, 3, 0], [-1, 2, 3, 2, -1],
        [-4, -1, 0, -1, -4]],
    7: [[-10, -5, -2, -1, -2, -5, -10], [-5, 0, 3, 4, 3, 0, -5], [-2, 3, 6, 7, 6, 3, -2],
        [-1, 4, 7, 8, 7, 4, -1], [-2, 3, 6, 7, 6, 3, -2], [-5, 0, 3, 4, 3, 0, -5],
        [-10, -5, -2, -1, -2, -5, -10]],
    15: [[0, 0, -1, 0, 0], [0, -1, -2, -1, 0], [-1, -2, 16, -2, -1], [0, -1, -2, -1, 0],
         [0, 0, -1, 0, 0]],
    19: [[0, -1, -1, -2, -2, -2, -1, -1, 0], [-1, -2, -4, -5, -5, -5, -4, -2, -1],
         [-1, -4, -5, -3, 0, -3, -5, -4, -1], [-2, -5, -3, 12, 24, 12, -3, -5, -2],
         [-2, -5, 0, 24, 40, 24, 0, -5, -2], [-2, -5, -3, 12, 24, 12, -3, -5, -2],
         [-1, -4, -5, -3, 0, -3, -5, -4, -1], [-1, -2, -4, -5, -5, -5, -4, -2, -1],
         [0, -1, -1, -2, -2, -2, -1, -1, 0]],
}  # fmt: skip
_R2 = math.sqrt(2)
# FreiChen's weighted kernels: (matrix, scale). ImageMagick scales by 1.0/2.0*MagickSQ2,
# which C reads as sqrt(2)/2, not the 1/(2*sqrt(2)) its comment has in mind.
_FREICHEN = {
    0: ([[1, 0, -1], [_R2, 0, -_R2], [1, 0, -1]], 1.0),
    1: ([[1, 0, -1], [_R2, 0, -_R2], [1, 0, -1]], _R2 / 2),
    2: ([[1, _R2, 0], [_R2, 0, -_R2], [0, -_R2, -1]], _R2 / 2),
    12: ([[1, _R2, 1], [0, 0, 0], [1, _R2, 1]], _R2 / 2),
    13: ([[_R2, -1, 0], [-1, 0, 1], [0, 1, -_R2]], _R2 / 2),
    14: ([[0, 1, -_R2], [-1, 0, 1], [_R2, -1, 0]], _R2 / 2),
    15: ([[0, -1, 0], [1, 0, 1], [0, -1, 0]], 1 / 2),
    16: ([[1, 0, -1], [0, 0, 0], [-1, 0, 1]], 1 / 2),
    17: ([[1, -2, 1], [-2, 4, -2], [-1, -2, 1]], 1 / 6),
    18: ([[-2, 1, -2], [1, 4, 1], [-2, 1, -2]], 1 / 6),
    19: ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 3),
}
_FREICHEN[11] = _FREICHEN[1]


def build(kind: str, g: Geometry, named: str) -> tuple[np.ndarray, tuple[int, int], float]:
    """(matrix, origin, the angle still to rotate by) of one kind, before rotation."""
    if kind == "unity":
        return np.array([[g.rho if "rho" in g.given else 1.0]]), (0, 0), 0.0
    if kind in ("gaussian", "dog", "log"):
        return _gaussian_2d(kind, g, named), _centre(_width_2d(kind, g, named)), 0.0
    if kind == "blur":
        return _blur(g, named)
    if kind == "comet":
        return _comet(g, named)
    if kind == "binomial":
        width = 3 if g.rho < 1 else 2 * int(g.rho) + 1
        _check_width(width, named)
        row = np.array([math.comb(width - 1, i) for i in range(width)], dtype=np.float64)
        return np.outer(row, row), _centre(width), 0.0
    if kind == "laplacian":  # an unknown type is the default, as in ImageMagick
        matrix = np.array(_LAPLACIANS.get(int(g.rho), _LAPLACIANS[0]), dtype=np.float64)
        return matrix, _centre(len(matrix)), 0.0
    if kind == "freichen":
        return _freichen(g, named)
    return np.array(_EDGES[kind], dtype=np.float64), (1, 1), g.rho


def _centre(width: int) -> tuple[int, int]:
    return (width - 1) // 2, (width - 1) // 2


def _check_width(width: int, named: str) -> None:
    if width > MAX_WIDTH:
        raise KernelError(
            f"kernel {named!r} would be {width} values wide; at most {MAX_WIDTH} (give a "
            f"smaller radius or sigma)"
        )


def _optimal_width(radius: float, sigma: float, dimensions: int) -> int:
    """GetOptimalKernelWidth1D/2D: 2*ceil(radius)+1 for a radius, else the first odd
    width from 5 whose edge value (relative to the sum) falls below one 16-bit level,
    minus 2."""
    if radius > EPSILON:
        return int(2 * math.ceil(radius) + 1)
    sigma = abs(sigma)
    if sigma <= EPSILON:
        return 3
    width = 5
    while True:
        j = (width - 1) // 2
        row = np.exp(-(np.arange(-j, j + 1, dtype=np.float64) ** 2) / (2 * sigma * sigma))
        # The value at the edge relative to the sum (the Gaussian's constant factor
        # cancels); a 2-D sum is the square of the 1-D one.
        value = row[0] / row.sum() ** dimensions
        if value < QUANTUM_SCALE or value < EPSILON or width > 2 * MAX_WIDTH:
            return width - 2
        width += 2


def _radius(g: Geometry, named: str) -> int:
    """A blur's radius: a whole number of pixels (ImageMagick 6.9 leaves part of the
    kernel of a fractional one uninitialised)."""
    if g.rho != int(g.rho):
        raise KernelError(
            f"kernel {named!r}: the radius {g.rho:g} must be a whole number of pixels, or 0 "
            f"for the size from sigma"
        )
    return int(g.rho)


def _width_2d(kind: str, g: Geometry, named: str) -> int:
    sigma, sigma2 = abs(g.sigma), abs(g.xi)
    if g.rho >= 1:
        width = 2 * _radius(g, named) + 1
    else:
        width = _optimal_width(g.rho, sigma if kind != "dog" or sigma >= sigma2 else sigma2, 2)
    _check_width(width, named)
    return width


def _gaussian_2d(kind: str, g: Geometry, named: str) -> np.ndarray:
    width = _width_2d(kind, g, named)
    r = (width - 1) // 2
    offsets = np.arange(-r, r + 1, dtype=np.float64)
    r2 = np.add.outer(offsets**2, offsets**2)
    delta = np.zeros((width, width))
    delta[r, r] = 1.0

    def gaussian(sigma: float) -> np.ndarray:
        if sigma <= EPSILON:
            return delta
        return np.exp(-r2 / (2 * sigma * sigma)) / (2 * math.pi * sigma * sigma)

    sigma = abs(g.sigma)
    if kind == "gaussian":
        values = gaussian(sigma)
    elif kind == "dog":
        values = gaussian(sigma) - gaussian(abs(g.xi))
    elif sigma > EPSILON:
        scaled = r2 / (2 * sigma * sigma)
        values = (1 - scaled) * np.exp(-scaled) / (math.pi * sigma**4)
    else:
        values = delta
    return _correlate_normalize(values)


def _correlate_normalize(values: np.ndarray) -> np.ndarray:
    """ScaleKernelInfo's CorrelateNormalize: positives to sum 1, negatives to sum -1
    (a kernel of positives only simply to sum 1); tiny values are 0 first."""
    values = np.where(np.abs(values) < EPSILON, 0.0, values)
    positive, negative = values[values > 0].sum(), values[values < 0].sum()
    scale_pos = positive if abs(positive) >= EPSILON else 1.0
    scale_neg = -negative if abs(negative) >= EPSILON else 1.0
    return np.where(values >= 0, values / scale_pos, values / scale_neg)


def _blur(g: Geometry, named: str) -> tuple[np.ndarray, tuple[int, int], float]:
    """A 1-D Gaussian row, sampled three times finer and summed per tap (ImageMagick's
    KernelRank 3), normalized; a 90-degree angle makes it a column."""
    sigma = abs(g.sigma)
    width = 2 * _radius(g, named) + 1 if g.rho >= 1 else _optimal_width(g.rho, sigma, 1)
    _check_width(width, named)
    values = np.zeros(width)
    if sigma > EPSILON:
        v = (width * 3 - 1) // 2
        u = np.arange(-v, v + 1, dtype=np.float64)
        fine = np.exp(-(u**2) / (2 * (3 * sigma) ** 2)) / (math.sqrt(2 * math.pi) * 3 * sigma)
        np.add.at(values, (np.arange(-v, v + 1) + v) // 3, fine)
    else:
        values[(width - 1) // 2] = 1.0
    return _correlate_normalize(values[None, :]), ((width - 1) // 2, 0), g.xi


def _comet(g: Geometry, named: str) -> tuple[np.ndarray, tuple[int, int], float]:
    """Half a Gaussian from the origin (the first value), normalized to sum 1."""
    sigma = abs(g.sigma)
    width = (_optimal_width(g.rho, sigma, 1) - 1) // 2 + 1 if g.rho < 1 else int(g.rho)
    _check_width(2 * width - 1, named)  # as applied: centred on its first value
    values = np.zeros(width)
    if sigma > EPSILON:
        u = np.arange(width * 3, dtype=np.float64)
        np.add.at(values, np.arange(width * 3) // 3, np.exp(-(u**2) / (2 * (3 * sigma) ** 2)))
    else:
        values[0] = 1.0
    return values[None, :] / values.sum(), (0, 0), g.xi


def _freichen(g: Geometry, named: str) -> tuple[np.ndarray, tuple[int, int], float]:
    kind = int(g.rho)
    if kind == 10:
        raise KernelError(
            f"kernel {named!r}: FreiChen:10 is a list of nine kernels; give each as its own "
            f"-k (im:FreiChen:11 to im:FreiChen:19)"
        )
    matrix, scale = _FREICHEN.get(kind, _FREICHEN[0])
    if abs(g.sigma) >= EPSILON:
        angle = g.sigma
    elif abs(g.rho) > 30:  # a large type is an angle for the default kernel
        angle = g.rho
    else:
        angle = 0.0
    return np.array(matrix, dtype=np.float64) * scale, (1, 1), angle


def rotate(
    matrix: np.ndarray, origin: tuple[int, int], angle: float, kind: str, named: str
) -> tuple[np.ndarray, tuple[int, int], float]:
    """RotateKernelInfo: by 45 degrees (3x3 kernels, cyclically), then 90 (square kernels
    clockwise, one-row or one-column kernels by transposing), then 180; angles round to
    the nearest of these steps. Returns the angle it turned by, as ImageMagick shows it."""
    angle = math.fmod(angle, 360.0)
    angle += 360.0 if angle < 0 else 0.0
    turned = 0.0
    if angle > 337.5 or angle <= 22.5:
        return matrix, origin, turned
    if kind == "blur":  # a line: half a turn changes nothing
        if 135.0 < angle <= 225.0:
            return matrix, origin, turned
        if 225.0 < angle <= 315.0:
            angle -= 180.0
    height, width = matrix.shape
    if 22.5 < math.fmod(angle, 90.0) <= 67.5:
        if (height, width) != (3, 3):
            raise KernelError(
                f"kernel {named!r}: ImageMagick rotates only 3x3 kernels by 45 degrees; "
                f"give a multiple of 90"
            )
        ring = [0, 1, 2, 5, 8, 7, 6, 3]  # clockwise around the centre
        flat = matrix.ravel().copy()
        flat[ring] = flat[np.roll(ring, 1)]
        matrix = flat.reshape(3, 3)
        angle, turned = math.fmod(angle + 315.0, 360.0), turned + 45.0
    if 45.0 < math.fmod(angle, 180.0) <= 135.0:
        if height == 1 or width == 1:
            matrix, origin = matrix.T.copy(), (origin[1], origin[0])
            if matrix.shape[1] == 1:
                angle, turned = math.fmod(angle + 270.0, 360.0), turned + 90.0
            else:
                angle, turned = math.fmod(angle + 90.0, 360.0), turned + 270.0
        elif height == width:
            matrix = np.rot90(matrix, -1).copy()
            x, y = 2 * origin[0] - width + 1, 2 * origin[1] - height + 1
            origin = ((-y + width - 1) // 2, (x + height - 1) // 2)
            angle, turned = math.fmod(angle + 270.0, 360.0), turned + 90.0
    if 135.0 < angle <= 225.0:
        matrix = matrix[::-1, ::-1].copy()
        origin = (matrix.shape[1] - origin[0] - 1, matrix.shape[0] - origin[1] - 1)
        turned += 180.0
    return matrix, origin, math.fmod(turned, 360.0)
