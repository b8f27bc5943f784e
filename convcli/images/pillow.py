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
    return PILImage
