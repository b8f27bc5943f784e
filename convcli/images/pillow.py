"""Pillow, imported on first use (so that ``convcli --help`` starts quickly) and set up
once for reading (:mod:`convcli.images.reading`) and writing (:mod:`convcli.images.writing`).
"""

from __future__ import annotations

import functools
import logging


@functools.cache
def image_module():
    """``PIL.Image``, set up once: raster plugins only, no pixel limit of its own,
    truncated files refused, and Pillow's log messages kept off stderr."""
    from PIL import Image as PILImage
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    PILImage.MAX_IMAGE_PIXELS = None  # we check the size ourselves, before decoding
    # Only the raster plugins: Image.init() would load every plugin (EPS, PDF, ...),
    # which convcli never opens, and takes twice as long (43 ms against 22 ms here).
    PILImage.preinit()  # BMP, GIF, JPEG, PPM, PNG
    from PIL import (  # noqa: F401 - importing a plugin registers it
        IcoImagePlugin,
        ImImagePlugin,
        MpoImagePlugin,
        PcxImagePlugin,
        QoiImagePlugin,
        SgiImagePlugin,
        TgaImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )

    # Pillow logs some refusals (logger.error) before raising; with no logging set up
    # Python would print them on stderr. The raised error is what the user sees.
    logging.getLogger("PIL").addHandler(logging.NullHandler())
    _silence_libtiff()
    return PILImage


def _silence_libtiff() -> None:
    """Keep libtiff from writing to stderr (``tempfile.tif: Using code not yet in table.``).

    libtiff reports errors and warnings through process-wide handlers that print, from C,
    before Pillow turns the failure into an exception; that exception is what the user
    is told, as one line naming their file. ``dlsym`` on Pillow's own extension finds
    the libtiff it is linked with (a wheel bundles its own copy), so the handlers set
    are the ones that copy calls. Where that fails (no libtiff, no ``ctypes``) nothing
    changes.
    """
    try:
        import ctypes

        from PIL import _imaging

        library = ctypes.CDLL(_imaging.__file__)
        for name in (
            "TIFFSetErrorHandler",
            "TIFFSetErrorHandlerExt",
            "TIFFSetWarningHandler",
            "TIFFSetWarningHandlerExt",
        ):
            setter = getattr(library, name)
            setter.restype = ctypes.c_void_p
            setter.argtypes = [ctypes.c_void_p]
            setter(None)
    except (ImportError, OSError, AttributeError):
        pass
