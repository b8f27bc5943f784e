"""Images as (N, C, H, W) float32 arrays: reading (:mod:`~convcli.images.reading`),
writing (:mod:`~convcli.images.writing`), the codecs convcli keeps where a library
falls short (:mod:`~convcli.images.png`, :mod:`~convcli.images.pnm`,
:mod:`~convcli.images.tiff`, :mod:`~convcli.images.npy`), output formats and names
(:mod:`~convcli.images.output_paths`), file identities (:mod:`~convcli.images.identities`)
and atomic writes (:mod:`~convcli.images.outputs`).

Kept light: the command line imports :mod:`~convcli.images.output_paths` for ``--help``, and
importing this package must not load NumPy or Pillow.
"""
