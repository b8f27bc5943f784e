"""Hypothesis strategies for convolution configurations, with the padding resolved
independently of the library (from the seed's and TensorFlow's rules)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from tests.reference import ref_same_padding

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


@dataclass
class Case:
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: tuple[int, int]
    padding: object  # as given to the library
    pads: tuple[int, int, int, int]  # as the reference resolves it
    dilation: tuple[int, int]
    groups: int
    mode: str

    def options(self) -> dict:
        """The keyword arguments of conv2d (and its backward) for this case."""
        return dict(
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            padding_mode=self.mode,
        )


def _pads_for(padding, size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = ref_same_padding(size[0], kernel[0], stride[0], dilation[0])
        left, right = ref_same_padding(size[1], kernel[1], stride[1], dilation[1])
        return (top, bottom, left, right)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


paddings = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    st.sampled_from(["same", "valid"]),
)


@st.composite
def conv_cases(draw, *, modes=MODES, dtype=np.float64, max_size=9) -> Case:
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    mode = draw(st.sampled_from(modes))
    padding = draw(paddings)
    pads = _pads_for(padding, size, kernel, stride, dilation)
    span = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    assume(size[0] + pads[0] + pads[1] >= span[0] and size[1] + pads[2] + pads[3] >= span[1])
    if mode == "reflect":
        assume(max(pads[:2]) < size[0] and max(pads[2:]) < size[1])
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * cg, *size)).astype(dtype)
    w = rng.standard_normal((groups * fg, cg, *kernel)).astype(dtype)
    b = rng.standard_normal(groups * fg).astype(dtype)
    return Case(x, w, b, stride, padding, pads, dilation, groups, mode)


@dataclass
class TransposeCase:
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: tuple[int, int]
    padding: object
    pads: tuple[int, int, int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def options(self) -> dict:
        """The keyword arguments of conv_transpose2d for this case."""
        return dict(
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation,
            groups=self.groups,
        )


@st.composite
def transpose_cases(draw, *, dtype=np.float64) -> TransposeCase:
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))))
    pads = _pads_for(padding, size, kernel, stride, dilation)
    out = [
        (i - 1) * s - a - b + d * (k - 1) + o + 1
        for i, s, a, b, d, k, o in zip(
            size, stride, pads[::2], pads[1::2], dilation, kernel, output_padding, strict=True
        )
    ]
    assume(min(out) >= 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * cg, *size)).astype(dtype)
    w = rng.standard_normal((groups * cg, fg, *kernel)).astype(dtype)
    b = rng.standard_normal(groups * fg).astype(dtype)
    return TransposeCase(x, w, b, stride, padding, pads, output_padding, dilation, groups)


@st.composite
def mutations(draw, seeds: list[bytes]) -> bytes:
    """One of ``seeds`` with up to 8 bytes overwritten and maybe cut short: loader fuzzing."""
    data = bytearray(draw(st.sampled_from(seeds)))
    flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
    for position, value in flips:
        data[position % len(data)] = value
    cut = draw(st.integers(0, 10**6))
    return bytes(data[: max(1, cut % (len(data) + 1))])


def _transpose_pads(padding, size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """The reference's reading of a transposed padding spec.

    "same" is derived from its definition: the adjoint of ``conv2d(padding="same")`` on an
    input of ``in * stride``, so the crop at the top/left is that conv's top/left padding and
    the output is exactly ``in * stride`` (a negative bottom/right keeps zero rows).
    """
    if padding != "same":
        return _pads_for(padding, size, kernel, stride, dilation)
    pads = []
    for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        before, _ = ref_same_padding(n * s, k, s, d)
        pads += [before, (n - 1) * s + d * (k - 1) + 1 - before - n * s]
    return tuple(pads)


@st.composite
def any_transpose_cases(draw, *, dtype=np.float64) -> TransposeCase:
    """Transposed cases with every padding form, output_padding and an unbatched input."""
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    padding = draw(paddings)
    pads = _transpose_pads(padding, size, kernel, stride, dilation)
    output_padding = (0, 0)
    if padding != "same":
        output_padding = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
        )
    out = [
        (i - 1) * s - a - b + d * (k - 1) + o + 1
        for i, s, a, b, d, k, o in zip(
            size, stride, pads[::2], pads[1::2], dilation, kernel, output_padding, strict=True
        )
    ]
    assume(min(out) >= 1)
    shape = (
        (groups * cg, *size)
        if draw(st.booleans())
        else (draw(st.integers(1, 2)), groups * cg, *size)
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((groups * cg, fg, *kernel)).astype(dtype)
    b = rng.standard_normal(groups * fg).astype(dtype)
    return TransposeCase(x, w, b, stride, padding, pads, output_padding, dilation, groups)


def length_fields(data: bytes) -> list[tuple[int, str]]:
    """(offset, struct format) of the fields that say how long or large something is:
    PNG chunk lengths, JPEG segment lengths, RIFF (WebP) chunk sizes, GIF screen and
    frame sizes, TIFF directory counts and values. What a damaged or hostile file lies in.
    """
    fields: list[tuple[int, str]] = []
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        at = 8
        while at + 8 <= len(data):
            fields.append((at, ">I"))
            at += 12 + int.from_bytes(data[at : at + 4], "big")
    elif data.startswith(b"\xff\xd8"):
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF:
            fields.append((at + 2, ">H"))
            if data[at + 1] in (0xDA, 0xD9):  # entropy-coded data follows
                break
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    elif data.startswith(b"RIFF"):
        fields.append((4, "<I"))
        at = 12
        while at + 8 <= len(data):
            fields.append((at + 4, "<I"))
            at += 8 + int.from_bytes(data[at + 4 : at + 8], "little") + 1 & ~1
    elif data.startswith(b"GIF"):
        fields += [(6, "<H"), (8, "<H")]
        fields += [
            (at + offset, "<H")
            for at in range(len(data) - 9)
            if data[at] == 0x2C
            for offset in (5, 7)
        ]
    elif data[:4] in (b"II*\0", b"MM\0*"):
        order = "<" if data[:2] == b"II" else ">"
        at = int.from_bytes(data[4:8], "little" if order == "<" else "big")
        seen = set()
        while 8 <= at < len(data) - 2 and at not in seen:
            seen.add(at)
            count = int.from_bytes(data[at : at + 2], "little" if order == "<" else "big")
            for n in range(min(count, 64)):
                entry = at + 2 + 12 * n
                if entry + 12 <= len(data):
                    fields += [(entry + 4, order + "I"), (entry + 8, order + "I")]
            end = at + 2 + 12 * count
            at = int.from_bytes(data[end : end + 4], "little" if order == "<" else "big")
    return [(offset, fmt) for offset, fmt in fields if offset + struct.calcsize(fmt) <= len(data)]


@st.composite
def damaged_files(draw, seeds: list[bytes]) -> bytes:
    """One of ``seeds`` damaged the ways files are: bit flips, overwritten bytes, length
    fields (:func:`length_fields`) edited to 0, a neighbour of their value, a huge value
    or anything, and truncation; or :func:`mutations` of it. Positions are uniform over
    the file (hypothesis' own integers favour the first bytes, the magic numbers, which
    only ever make "not an image"), and truncation is one edit among several, so that
    many damaged files still decode and the success path is exercised too."""
    data = bytearray(draw(st.sampled_from(seeds)))
    if draw(st.integers(0, 9)) == 0:
        data = bytearray(draw(mutations(seeds)))
    rnd = draw(st.randoms(use_true_random=True))
    edits = draw(
        st.lists(
            st.sampled_from(["flip"] * 4 + ["byte"] * 2 + ["length"] * 3 + ["cut"]),
            min_size=1,
            max_size=4,
        )
    )
    for edit in edits:
        if edit == "flip":
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        elif edit == "byte":
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif edit == "cut":
            data = data[: rnd.randrange(1, len(data) + 1)]
        elif fields := length_fields(bytes(data)):
            offset, fmt = rnd.choice(fields)
            top = 256 ** struct.calcsize(fmt) - 1
            (value,) = struct.unpack_from(fmt, data, offset)
            new = rnd.choice([0, 1, top, top // 2, value + rnd.randint(-4, 4), rnd.randrange(top)])
            struct.pack_into(fmt, data, offset, min(max(new, 0), top))
    return bytes(data)
