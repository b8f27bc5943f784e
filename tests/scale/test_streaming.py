"""An image streamed block by block into each sink: the in-memory job's pixels and numbers,
whole-image decisions kept whole, outputs complete or absent."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from convcli.errors import ImageError, OutputError
from convcli.images.reading import read_image
from convcli.images.regions import open_regions
from convcli.images.writing import write_image
from convcli.jobs import pipeline
from convcli.jobs.pipeline import Step
from convcli.kernels import load_filter
from convcli.scale import schedulers, sinks, streaming
from convcli.scale.sources import ArraySource

RNG = np.random.default_rng(5)
STEPS = [Step(load_filter("gaussian:5")), Step(load_filter("sobel-x"))]


@pytest.fixture(scope="module")
def scheduler():
    with schedulers.open_scheduler("threads") as threads:
        yield threads


@pytest.fixture
def tiff_input(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, RNG.integers(0, 65536, (70, 90, 3), dtype=np.uint16), tile=(32, 32))
    return str(path)


def in_memory(path: str, steps, value_range, target: str, **options) -> pipeline.Result:
    image = read_image(path)
    result = pipeline.apply_steps(image.pixels, steps, has_alpha=image.has_alpha)
    bounds = (result.minimum, result.maximum)
    pixels, low, high = pipeline.map_range(result.values.copy(), value_range, bounds=bounds)
    write_image(pixels, target, **options)
    return result, int(low.sum()), int(high.sum())


@pytest.mark.parametrize("value_range", ["clip", "abs", "normalize"])
def test_a_tiled_tiff_streamed_band_by_band_is_the_in_memory_result(
    tmp_path, tiff_input, scheduler, value_range
):
    out, reference = str(tmp_path / "out.tif"), str(tmp_path / "memory.tif")
    outcome = streaming.run_blocks(
        open_regions(tiff_input),
        lambda shape, alpha: sinks.TiffSink(
            out, shape, depth=16, tile=32, compress_level=1, alpha=alpha
        ),
        STEPS,
        has_alpha=False,
        value_range=value_range,
        scheduler=scheduler,
        chunks=(20, 35),
    )
    result, low, high = in_memory(tiff_input, STEPS, value_range, reference, depth=16)
    np.testing.assert_array_equal(read_image(out).pixels, read_image(reference).pixels)
    assert (outcome.minimum, outcome.maximum) == (result.minimum.min(), result.maximum.max())
    assert (outcome.clipped_low, outcome.clipped_high) == (low, high)
    with tifffile.TiffFile(out) as written:
        assert written.pages[0].is_tiled
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "memory.tif", "out.tif"]


@pytest.mark.parametrize("fmt", ["npy", "zarr"])
def test_raw_outputs_are_written_in_place_with_the_raw_values(tmp_path, tiff_input, scheduler, fmt):
    out = str(tmp_path / f"out.{fmt}")

    def sink(shape, alpha):
        if fmt == "npy":
            return sinks.NpySink(out, shape)
        return sinks.ZarrSink(out, shape, chunk=(32, 32))

    outcome = streaming.run_blocks(
        open_regions(tiff_input),
        sink,
        STEPS,
        has_alpha=False,
        value_range=None,
        scheduler=scheduler,
    )
    expected = pipeline.apply_steps(read_image(tiff_input).pixels, STEPS, has_alpha=False).values
    got = np.load(out) if fmt == "npy" else pytest.importorskip("zarr").open_array(out)[...]
    np.testing.assert_array_equal(got, expected[0])
    assert outcome.clipped_low == outcome.clipped_high == 0
    assert sorted(os.listdir(tmp_path)) == ["in.tif", f"out.{fmt}"]


def test_formats_written_whole_are_gathered(tmp_path, scheduler):
    x = RNG.random((1, 4, 30, 40), dtype=np.float32)
    out, reference = str(tmp_path / "out.png"), str(tmp_path / "memory.png")
    steps = [Step(load_filter("box:3"))]
    streaming.run_blocks(
        ArraySource(x),
        lambda shape, alpha: sinks.GatherSink(out, shape, alpha=alpha, depth=8),
        steps,
        has_alpha=True,
        value_range="clip",
        scheduler=scheduler,
        chunks=(8, 8),
    )
    result = pipeline.apply_steps(x.copy(), steps, has_alpha=True)
    write_image(np.clip(result.values, 0, 1), reference, alpha=True)
    np.testing.assert_array_equal(read_image(out).pixels, read_image(reference).pixels)


def test_nan_is_counted_over_the_whole_image(tmp_path, scheduler):
    x = np.full((1, 1, 20, 20), 0.5, np.float32)
    x[0, 0, [2, 15], [3, 17]] = np.nan
    outcome = streaming.run_blocks(
        ArraySource(x),
        lambda shape, alpha: sinks.TiffSink(
            str(tmp_path / "o.tif"), shape, depth=8, tile=16, compress_level=1, alpha=alpha
        ),
        [Step(load_filter("box:3"))],
        has_alpha=False,
        value_range="clip",
        scheduler=scheduler,
        chunks=(5, 5),
    )
    assert outcome.warnings == [f"{tmp_path / 'o.tif'}: 18 values were NaN; written as 0"]
    assert outcome.minimum == outcome.maximum == 0.5


class FailingAt:
    """A region source that fails on the rows past ``row``."""

    def __init__(self, array, row: int) -> None:
        self.array, self.row = array, row
        self.shape, self.dtype = array.shape, array.dtype

    def read_region(self, samples, channels, rows, cols):
        if rows.stop > self.row:
            raise ImageError("in.tif: damaged TIFF (a tile cannot be decoded)")
        return self.array[samples, channels, rows, cols]


@pytest.mark.parametrize("fmt", ["tif", "npy", "zarr", "png"])
def test_a_block_that_fails_leaves_no_output(tmp_path, scheduler, fmt):
    out = str(tmp_path / f"out.{fmt}")
    makers = {
        "tif": lambda shape, alpha: sinks.TiffSink(
            out, shape, depth=8, tile=16, compress_level=1, alpha=alpha
        ),
        "npy": lambda shape, alpha: sinks.NpySink(out, shape),
        "zarr": lambda shape, alpha: sinks.ZarrSink(out, shape, chunk=(16, 16)),
        "png": lambda shape, alpha: sinks.GatherSink(out, shape, alpha=alpha, depth=8),
    }
    source = FailingAt(np.zeros((1, 1, 64, 64), np.float32), 40)
    with pytest.raises(ImageError, match="damaged TIFF"):
        streaming.run_blocks(
            source,
            makers[fmt],
            [Step(load_filter("box:3"))],
            has_alpha=False,
            value_range="clip",
            scheduler=scheduler,
            chunks=(16, 16),
        )
    assert os.listdir(tmp_path) == []


def test_progress_counts_blocks(tmp_path, scheduler):
    seen = []
    streaming.run_blocks(
        ArraySource(np.zeros((1, 1, 30, 30), np.float32)),
        lambda shape, alpha: sinks.NpySink(str(tmp_path / "o.npy"), shape),
        [Step(load_filter("box:3"))],
        has_alpha=False,
        value_range=None,
        scheduler=scheduler,
        chunks=(10, 15),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(k, 6) for k in range(1, 7)]


def test_default_blocks_hold_a_band_and_sit_on_the_engine_grid():
    blocks = streaming.block_grid((1, 1, 20000, 30000), unit=(1, 700), band_rows=1000)
    assert {b.rows[1] - b.rows[0] for b in blocks[:-1]} <= {1000, 20000 % 1000}
    assert all(b.cols[0] % 700 == 0 for b in blocks)
    covered = sum((b.rows[1] - b.rows[0]) * (b.cols[1] - b.cols[0]) for b in blocks)
    assert covered == 20000 * 30000


def test_worker_processes_give_the_same_output_and_a_failure_leaves_nothing(
    tmp_path, tiff_input, scheduler
):
    with schedulers.open_scheduler("processes") as processes:
        for name, chosen in (("threads", scheduler), ("processes", processes)):
            streaming.run_blocks(
                open_regions(tiff_input),
                lambda shape, alpha, name=name: sinks.TiffSink(
                    str(tmp_path / f"{name}.tif"),
                    shape,
                    depth=16,
                    tile=32,
                    compress_level=1,
                    alpha=alpha,
                ),
                STEPS,
                has_alpha=False,
                value_range="abs",
                scheduler=chosen,
                chunks=(20, 35),
            )
        with pytest.raises(ImageError, match="damaged TIFF"):
            streaming.run_blocks(
                FailingAt(np.zeros((1, 1, 64, 64), np.float32), 40),
                lambda shape, alpha: sinks.NpySink(str(tmp_path / "failed.npy"), shape),
                [Step(load_filter("box:3"))],
                has_alpha=False,
                value_range=None,
                scheduler=processes,
                chunks=(16, 16),
            )
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "processes.tif"), tifffile.imread(tmp_path / "threads.tif")
    )
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "processes.tif", "threads.tif"]


class BrokenDisk(sinks.TiffSink):
    """A TIFF whose disk fills up after its first band."""

    def write(self, results):
        def bands():
            for count, pair in enumerate(results):
                if count == 3:
                    raise OutputError(f"{self.target}: cannot write (No space left on device)")
                yield pair

        super().write(bands())


def test_a_writer_that_fails_stops_the_blocks_and_leaves_nothing(tmp_path, scheduler):
    computed = []

    class Counting(ArraySource):
        def read_region(self, *where):
            computed.append(where)
            return super().read_region(*where)

    with pytest.raises(OutputError, match="No space left"):
        streaming.run_blocks(
            Counting(np.zeros((1, 1, 200, 30), np.float32)),
            lambda shape, alpha: BrokenDisk(
                str(tmp_path / "o.tif"), shape, depth=8, tile=16, compress_level=1, alpha=alpha
            ),
            [Step(load_filter("box:3"))],
            has_alpha=False,
            value_range="clip",
            scheduler=scheduler,
            chunks=(10, 30),
        )
    assert os.listdir(tmp_path) == []
    assert len(computed) < 20  # the bands after the failure were never computed
