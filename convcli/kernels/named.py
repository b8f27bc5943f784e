"""The named-kernel catalogue: ``gaussian:N[,sigma]``, ``sobel-x``, ``unsharp:N,...``.

Each entry of :data:`NAMED` has a syntax, a one-line description (what ``convcli kernels``
lists) and a builder that turns the spec's numeric arguments into a float64 matrix or
raises :class:`~convcli.errors.KernelError` naming the spec. :mod:`convcli.kernels.loader`
turns the matrix into a :class:`~convcli.kernels.filters.Filter`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.imagemagick import NAMES as IMAGEMAGICK_NAMES
from convcli.kernels.limits import MAX_TAPS
from convcli.kernels.values import as_number

MAX_SIZE = MAX_TAPS
"""The largest size of a named kernel (checked before anything is allocated)."""


def _whole(spec: str, value: float, *, what: str = "size", maximum: int = MAX_SIZE) -> int:
    if value != int(value) or value < 1:
        raise KernelError(f"kernel {spec!r}: {what} must be a whole number >= 1, got {value:g}")
    if value > maximum:
        raise KernelError(f"kernel {spec!r}: {what} {value:g} is too large; at most {maximum}")
    return int(value)


def _sigma(spec: str, args: list[float]) -> float | None:
    """The optional sigma argument; None (OpenCV's default) when absent or 0, as in OpenCV."""
    sigma = args[1] if len(args) > 1 else 0.0
    if sigma < 0:
        raise KernelError(
            f"kernel {spec!r}: sigma must be positive, or 0 for OpenCV's default, got {sigma:g}"
        )
    return sigma or None


# OpenCV's getGaussianKernel(n, sigma <= 0) returns fixed tables for these sizes
# (getGaussianKernelBitExact, modules/imgproc/src/smooth.dispatch.cpp, OpenCV >= 4.1);
# other sizes sample the Gaussian with its default sigma.
_OPENCV_TABLES = {
    1: np.array([1.0]),
    3: np.array([1, 2, 1]) / 4,
    5: np.array([1, 4, 6, 4, 1]) / 16,
    7: np.array([2, 7, 14, 18, 14, 7, 2]) / 64,
    9: np.array([4, 13, 30, 51, 60, 51, 30, 13, 4]) / 256,
}


def _gaussian_1d(size: int, sigma: float | None) -> np.ndarray:
    """Sampled Gaussian of ``size`` taps, sum 1; ``sigma=None`` is OpenCV's default.

    For even sizes OpenCV gives both centre taps the weight of offset 0 (a quirk kept
    for its SURF code, and cv2.GaussianBlur refuses even sizes); here every size is
    sampled at its true offsets ``i - (size - 1) / 2``.
    """
    if sigma is None:
        if size in _OPENCV_TABLES:
            return _OPENCV_TABLES[size].copy()
        sigma = _default_sigma(size)
    x = np.arange(size) - (size - 1) / 2
    # Relative to the centre tap and divided by sigma twice: a tiny sigma gives a delta
    # (not 0/0), a huge one a box.
    with np.errstate(over="ignore"):
        g = np.exp(-((x**2 - np.min(x**2)) / 2 / sigma / sigma))
    return g / g.sum()


def _default_sigma(size: int) -> float:
    # OpenCV's getGaussianKernel default, so sizes match what users know.
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def _gaussian_size(spec: str, args: list[float]) -> int:
    """N of ``gaussian:N[,sigma]``; N = 0 takes it from sigma as OpenCV does for 8-bit
    images (``GaussianBlur(ksize=(0, 0))``): ``cvRound(sigma*3*2 + 1) | 1``."""
    if not args or args[0] != 0:
        return _whole(spec, args[0] if args else 5)
    sigma = _sigma(spec, args)
    if sigma is None:
        raise KernelError(
            f"kernel {spec!r}: size 0 takes the size from sigma, so give one "
            f"(gaussian:0,2), or give the size (gaussian:5)"
        )
    if sigma * 6 + 1 > MAX_SIZE:
        raise KernelError(
            f"kernel {spec!r}: sigma {sigma:g} makes a kernel of {sigma * 6 + 1:.4g} taps; "
            f"at most {MAX_SIZE} (sigma up to {(MAX_SIZE - 1) / 6:g})"
        )
    # round() rounds half to even, as cvRound (lrint) does.
    return round(sigma * 6 + 1) | 1


def _gaussian(spec: str, args: list[float]) -> np.ndarray:
    g = _gaussian_1d(_gaussian_size(spec, args), _sigma(spec, args))
    return np.outer(g, g)


def _box(spec: str, args: list[float]) -> np.ndarray:
    size = _whole(spec, args[0] if args else 3)
    return np.full((size, size), 1.0 / (size * size))


def _bilinear(spec: str, args: list[float]) -> np.ndarray:
    factor = _whole(spec, args[0] if args else 2, what="factor", maximum=(MAX_SIZE + 1) // 2)
    size = 2 * factor - factor % 2
    center = factor - 1 if size % 2 else factor - 0.5
    w = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(w, w)


def _factor_taps(spec: str, args: list[float], lobes: int) -> tuple[int, np.ndarray]:
    """(factor, the 1-D taps' distances from the centre in input pixels) of a kernel for
    F-times upsampling whose curve reaches ``lobes`` input pixels each side: 2*lobes*F
    taps (one fewer for odd F, whose centre tap falls on an input pixel), placed as
    ``bilinear:F`` places its 2F, so that the transposed convolution with stride F and
    padding "same" samples at half-pixel centres (align_corners=False)."""
    factor = _whole(spec, args[0] if args else 2, what="factor", maximum=MAX_SIZE)
    size = 2 * lobes * factor - factor % 2
    if size > MAX_SIZE:
        raise KernelError(
            f"kernel {spec!r}: factor {factor} makes a {size}x{size} kernel; at most "
            f"{MAX_SIZE} (factor up to {(MAX_SIZE + 1) // (2 * lobes)})"
        )
    return factor, (np.arange(size) - (size - 1) / 2) / factor


def _bicubic(spec: str, args: list[float]) -> np.ndarray:
    # Keys' cubic convolution with a = -0.75, as PyTorch's (and OpenCV's) bicubic; its
    # taps already sum to 1 in every stride phase.
    _, t = _factor_taps(spec, args, 2)
    a, t = -0.75, np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    w = np.where(t <= 1, near, np.where(t < 2, far, 0.0))
    return np.outer(w, w)


def _lanczos(spec: str, args: list[float]) -> np.ndarray:
    lobes = _whole(spec, args[1] if len(args) > 1 else 3, what="lobes A", maximum=8)
    factor, t = _factor_taps(spec, args, lobes)
    w = np.where(np.abs(t) < lobes, np.sinc(t) * np.sinc(t / lobes), 0.0)
    # Each stride phase's taps divided by their sum, as Pillow's resize normalizes the
    # weights of every output pixel: a flat image stays flat.
    for phase in range(factor):
        w[phase::factor] /= w[phase::factor].sum()
    return np.outer(w, w)


def _nearest(spec: str, args: list[float]) -> np.ndarray:
    factor = _whole(spec, args[0] if args else 2, what="factor")
    return np.ones((factor, factor))


def _motion(spec: str, args: list[float]) -> np.ndarray:
    size = _whole(spec, args[0] if args else 9)
    k = np.zeros((size, size))
    k[(size - 1) // 2, :] = 1.0 / size
    return k


def _unsharp(spec: str, args: list[float]) -> np.ndarray:
    size = _gaussian_size(spec, args[:2])
    amount = args[2] if len(args) > 2 else 1.0
    blur = _gaussian(spec, args[:2])  # the same blur as gaussian:N[,sigma]
    identity = np.zeros_like(blur)
    identity[(size - 1) // 2, (size - 1) // 2] = 1.0
    return identity + amount * (identity - blur)


def _log(spec: str, args: list[float]) -> np.ndarray:
    size = _whole(spec, args[0] if args else 9)
    sigma = args[1] if len(args) > 1 else size / 6
    if sigma <= 0:
        raise KernelError(f"kernel {spec!r}: sigma must be positive, got {sigma:g}")
    x = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(x, x)
    # Capped: beyond it exp(-r2) is 0 anyway, and a tiny sigma must not give inf * 0.
    with np.errstate(over="ignore"):
        r2 = np.minimum((xx**2 + yy**2) / 2 / sigma / sigma, 1e4)
    k = -(1 - r2) * np.exp(-r2)
    return k - k.mean()  # zero sum: flat regions give 0


def _fixed(matrix: list[list[float]]) -> Callable[[str, list[float]], np.ndarray]:
    def build(spec: str, args: list[float]) -> np.ndarray:
        return np.array(matrix, dtype=np.float64)

    return build


def _magnitude(x: list[list[float]]) -> Callable[[str, list[float]], tuple[np.ndarray, ...]]:
    """A bank of the x-gradient kernel and its transpose (the y-gradient): the loader
    combines their responses as ``sqrt(gx**2 + gy**2)``."""

    def build(spec: str, args: list[float]) -> tuple[np.ndarray, ...]:
        gx = np.array(x, dtype=np.float64)
        return gx, gx.T.copy()

    return build


_SOBEL = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
_PREWITT = [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]
_SCHARR = [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]

# name: (syntax, one-line description, builder); a builder returns a matrix, or a tuple
# of matrices for a filter bank whose responses combine by magnitude.
Builder = Callable[[str, list[float]], "np.ndarray | tuple[np.ndarray, ...]"]
NAMED: dict[str, tuple[str, str, Builder]] = {
    "identity": ("identity", "1x1 kernel that copies the image", _fixed([[1.0]])),
    "box": ("box:N", "NxN mean (default 3); separable", _box),
    "gaussian": (
        "gaussian:N[,sigma]",
        "NxN Gaussian blur, sum 1; default sigma as OpenCV (its tables for odd N <= 9); "
        "N = 0 takes the size from sigma as OpenCV does for 8-bit images",
        _gaussian,
    ),
    "sharpen": (
        "sharpen",
        "3x3 sharpen (5 centre, -1 neighbours), sum 1",
        _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    ),
    "laplacian": (
        "laplacian",
        "3x3 Laplacian (4-neighbour), sum 0",
        _fixed([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    ),
    "sobel-x": (
        "sobel-x",
        "3x3 Sobel, positive where brightness rises left to right",
        _fixed(_SOBEL),
    ),
    "sobel-y": (
        "sobel-y",
        "3x3 Sobel, positive where brightness rises top to bottom",
        _fixed(np.array(_SOBEL).T.tolist()),
    ),
    "sobel": (
        "sobel",
        "gradient magnitude sqrt(gx^2 + gy^2) of sobel-x and sobel-y (as cv2.Sobel + "
        "cv2.magnitude)",
        _magnitude(_SOBEL),
    ),
    "scharr": ("scharr", "gradient magnitude of scharr-x and scharr-y", _magnitude(_SCHARR)),
    "prewitt": ("prewitt", "gradient magnitude of prewitt-x and prewitt-y", _magnitude(_PREWITT)),
    "prewitt-x": ("prewitt-x", "3x3 Prewitt, left-to-right gradient", _fixed(_PREWITT)),
    "prewitt-y": (
        "prewitt-y",
        "3x3 Prewitt, top-to-bottom gradient",
        _fixed(np.array(_PREWITT).T.tolist()),
    ),
    "scharr-x": ("scharr-x", "3x3 Scharr, left-to-right gradient", _fixed(_SCHARR)),
    "scharr-y": (
        "scharr-y",
        "3x3 Scharr, top-to-bottom gradient",
        _fixed(np.array(_SCHARR).T.tolist()),
    ),
    "emboss": (
        "emboss",
        "3x3 emboss (light from the top left), sum 1",
        _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    ),
    "edge": (
        "edge",
        "3x3 edge detector (8-neighbour Laplacian), sum 0",
        _fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    ),
    "motion": ("motion:N", "horizontal motion blur over N pixels (default 9)", _motion),
    "unsharp": (
        "unsharp:N[,sigma[,amount]]",
        "unsharp mask: image + amount*(image - blur)",
        _unsharp,
    ),
    "log": ("log:N[,sigma]", "Laplacian of Gaussian (zero sum, default sigma N/6)", _log),
    "bilinear": ("bilinear:F", "transposed-conv kernel for F-times bilinear upsampling", _bilinear),
    "nearest": (
        "nearest:F",
        "transposed-conv kernel for F-times nearest-neighbour upsampling",
        _nearest,
    ),
    "bicubic": (
        "bicubic:F",
        "transposed-conv kernel for F-times bicubic upsampling (Keys a=-0.75, as PyTorch)",
        _bicubic,
    ),
    "lanczos": (
        "lanczos:F[,A]",
        "transposed-conv kernel for F-times Lanczos upsampling, A lobes (2 or 3, "
        "default 3 as Pillow's LANCZOS), each phase normalized",
        _lanczos,
    ),
}


UPSAMPLING = ("bilinear", "nearest", "bicubic", "lanczos")
"""The kernels made for a factor: ``upsample -k NAME`` gives them ``--factor``."""


def list_kernels() -> list[tuple[str, str]]:
    """(syntax, description) of every named kernel, for ``convcli kernels``.

    Examples
    --------
    >>> dict(list_kernels())["box:N"]
    'NxN mean (default 3); separable'
    """
    own = [(syntax, description) for syntax, description, _ in NAMED.values()]
    return [
        *own,
        (
            "im:NAME[:ARGS]",
            f"ImageMagick's kernel as -morphology prints it (Gaussian:0x2, Sobel:90, ...): "
            f"{', '.join(IMAGEMAGICK_NAMES)}",
        ),
    ]


def named_kernel(spec: str) -> np.ndarray | tuple[np.ndarray, ...] | None:
    """The matrix of a named kernel spec (``gaussian:7,1.5``), the matrices of a named
    bank (``sobel``), or None if it names none.

    Examples
    --------
    >>> named_kernel("box:2").tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    >>> named_kernel("photo.png") is None
    True
    """
    name, _, arg_text = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in NAMED:
        return None
    syntax, _, build = NAMED[name]
    texts = arg_text.replace(" ", "").split(",") if arg_text.strip() else []
    most = len(syntax.partition(":")[2].replace("[", "").replace("]", "").split(",")) * (
        ":" in syntax
    )
    if len(texts) > most:
        takes = f"at most {most} argument{'s' * (most > 1)}" if most else "no arguments"
        raise KernelError(f"kernel {spec!r} takes {takes}: {syntax}")
    if "" in texts:
        raise KernelError(f"kernel {spec!r}: an argument is empty; write {syntax}")
    args = [as_number(text, f"kernel {spec!r}") for text in texts]
    return build(spec, args)
