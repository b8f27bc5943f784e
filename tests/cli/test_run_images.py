"""apply and upsample in blocks (--chunks, --scheduler, --tile): the in-memory path's
pixels and reports, big images under a memory limit, and the options' refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage

from convcli import conv2d
from convcli.cli.app import cli
from convcli.images.reading import read_image
from convcli.images.regions import open_regions
from convcli.images.writing import to_integers, write_image
from convcli.jobs import pipeline
from convcli.kernels import load_filter
from tests.paths import ROOT, SAMPLES
from tests.reference import ref_conv2d


def run(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    """The sample images at 8 and 16 bits, gray, RGB and RGBA (the RGBA's alpha a
    gradient with fully transparent pixels)."""
    folder = tmp_path_factory.mktemp("inputs")
    coffee = read_image(str(SAMPLES / "coffee.png")).pixels
    chelsea = read_image(str(SAMPLES / "chelsea.png")).pixels
    alpha = np.linspace(0, 1.2, chelsea.shape[3], dtype=np.float32).clip(0, 1)
    rgba = np.concatenate([chelsea, np.broadcast_to(alpha, chelsea[:, :1].shape)], axis=1)
    write_image(coffee, str(folder / "coffee16.png"), depth=16)
    write_image(rgba, str(folder / "chelsea-rgba.png"))
    return {
        "gray 8-bit": str(SAMPLES / "camera.png"),
        "RGB 8-bit": str(SAMPLES / "astronaut.png"),
        "RGB 16-bit": str(folder / "coffee16.png"),
        "RGBA 8-bit": str(folder / "chelsea-rgba.png"),
    }


# Every engine: blocks compute over the engine's own tiles, so all are bit-identical.
KERNELS = {
    "gaussian:9 (separable)": ["-k", "gaussian:9"],
    "sharpen (rows)": ["-k", "0 -1 0; -1 5 -1; 0 -1 0"],
    # Integer weights: exact integer sums where floats provably agree (8-bit), floats
    # where they may not (16-bit: blocks were a level off on 9 pixels)
    "heavy integer sharpen": ["-k", "-10 -10 -10; -10 81 -10; -10 -10 -10"],
    "sobel magnitude": ["-k", "sobel"],
    "gaussian:31 (fft)": ["-k", "gaussian:31"],
    "box:5 stride 2, then sobel-x": ["-k", "box:5", "--stride", "2", "-k", "sobel-x"],
}
RANGES = ["clip", "abs", "normalize"]
CASES = [
    (image, kernel, RANGES[(i + j) % 3])
    for i, image in enumerate(["gray 8-bit", "RGB 8-bit", "RGB 16-bit", "RGBA 8-bit"])
    for j, kernel in enumerate(KERNELS)
]


def _integers(path: str) -> np.ndarray:
    image = read_image(path)
    return to_integers(image.pixels, image.depth)


def _records(path) -> list[dict]:
    with open(path) as lines:
        records = [json.loads(line) for line in lines]
    for record in records:  # all but the times and the output's name
        record.pop("seconds"), record.pop("filter_seconds"), record.pop("output")
    return records


def assert_same_pixels(blocked: str, whole: str, *, exact: bool) -> None:
    got, expected = _integers(blocked), _integers(whole)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(got, expected)
        return
    differ = got.astype(np.int64) != expected
    assert np.abs(got.astype(np.int64) - expected).max(initial=0) <= 1
    assert differ.mean() <= 0.001, f"{differ.mean():.4%} of the values differ"


@pytest.mark.parametrize(("image", "kernel", "value_range"), CASES)
def test_blocks_of_64_are_the_in_memory_pixels_and_report(
    tmp_path, images, image, kernel, value_range
):
    options = KERNELS[kernel]
    common = [images[image], *options, "--range", value_range, "-q"]
    blocked, whole = tmp_path / "blocked.png", tmp_path / "whole.png"
    r1 = run("apply", *common, "--chunks", "64", "-o", blocked, "--report", tmp_path / "b.jsonl")
    r2 = run("apply", *common, "-o", whole, "--report", tmp_path / "w.jsonl")
    assert r1.exit_code == r2.exit_code == 0, r1.output + r2.output
    assert r1.output == r2.output.replace("whole.png", "blocked.png")  # the same warnings
    assert_same_pixels(str(blocked), str(whole), exact=True)
    assert _records(tmp_path / "b.jsonl") == _records(tmp_path / "w.jsonl")


@pytest.mark.parametrize("image", ["RGB 16-bit", "gray 8-bit"])
@pytest.mark.parametrize("kernel", ["-10 -10 -10; -10 81 -10; -10 -10 -10", "0 -3000 0; 0 3001 0"])
def test_heavy_integer_kernels_in_blocks_are_the_in_memory_pixels(tmp_path, images, image, kernel):
    # 16-bit: in memory summed exactly in integers, in blocks in float32 and rounded back:
    # 9 pixels a level apart (up to 8 levels with the second kernel), another max.
    common = [images[image], "-k", kernel, "--pad-mode", "replicate", "--range", "clip", "-q"]
    blocked, whole = tmp_path / "blocked.png", tmp_path / "whole.png"
    r1 = run("apply", *common, "--chunks", "16", "-o", blocked, "--report", tmp_path / "b.jsonl")
    r2 = run("apply", *common, "-o", whole, "--report", tmp_path / "w.jsonl")
    assert r1.exit_code == r2.exit_code == 0, r1.output + r2.output
    assert_same_pixels(str(blocked), str(whole), exact=True)
    assert _records(tmp_path / "b.jsonl") == _records(tmp_path / "w.jsonl")


@pytest.mark.parametrize("fmt", ["npy", "zarr"])
def test_raw_outputs_in_blocks_keep_the_float_values_clipped(tmp_path, images, fmt):
    # Blocks rounded them to k/255 (the integers an 8-bit file would hold), memory did not.
    common = [images["RGB 8-bit"], "-k", "0 -1 0; -1 5 -1; 0 -1 0", "--range", "clip", "-q"]
    blocked, whole = tmp_path / f"blocked.{fmt}", tmp_path / f"whole.{fmt}"
    assert run("apply", *common, "--chunks", "64", "-o", blocked).exit_code == 0
    assert run("apply", *common, "-o", whole).exit_code == 0
    got, expected = read_image(str(blocked)).pixels, read_image(str(whole)).pixels
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fmt", ["npy", "zarr", "tif"])
def test_upsampling_in_blocks_to_each_streamed_format(tmp_path, images, fmt):
    common = ["upsample", images["RGBA 8-bit"], "--factor", "3", "-k", "bicubic", "-q"]
    blocked, whole = tmp_path / f"blocked.{fmt}", tmp_path / f"whole.{fmt}"
    assert run(*common, "--chunks", "100,70", "-o", blocked).exit_code == 0
    assert run(*common, "-o", whole).exit_code == 0
    if fmt == "tif":
        assert_same_pixels(str(blocked), str(whole), exact=False)
        with tifffile.TiffFile(blocked) as written:
            assert written.pages[0].is_tiled
    else:
        got, expected = read_image(str(blocked)).pixels, read_image(str(whole)).pixels
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == sorted([blocked.name, whole.name])


def test_frames_to_one_output_each(tmp_path):
    pages = np.random.default_rng(2).integers(0, 65536, (3, 60, 80), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack", tile=(32, 32))
    common = [tmp_path / "pages.tif", "-k", "gaussian:5", "-q"]
    assert run("apply", *common, "--chunks", "16", "-o", tmp_path / "b-{frame}.tif").exit_code == 0
    assert run("apply", *common, "-o", tmp_path / "w-{frame}.tif").exit_code == 0
    for n in range(3):
        assert_same_pixels(str(tmp_path / f"b-{n}.tif"), str(tmp_path / f"w-{n}.tif"), exact=True)


def test_zarr_in_and_out_keep_raw_values(tmp_path, images):
    zarr = pytest.importorskip("zarr")
    assert (
        run("apply", images["RGB 16-bit"], "-k", "box:3", "-o", tmp_path / "a.zarr").exit_code == 0
    )
    stored = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert stored.shape == (3, 400, 600) and stored.dtype == np.float32
    assert (
        run("apply", tmp_path / "a.zarr", "-k", "sobel-x", "-o", tmp_path / "b.npy").exit_code == 0
    )
    assert (
        run(
            "apply", images["RGB 16-bit"], "-k", "box:3", "-k", "sobel-x", "-o", tmp_path / "c.npy"
        ).exit_code
        == 0
    )
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), np.load(tmp_path / "c.npy"), atol=1e-6)


def test_a_tiff_past_max_pixels_is_filtered_in_blocks_and_a_png_is_refused_with_the_way_out(
    tmp_path, images
):
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, np.zeros((300, 400), np.uint8), tile=(64, 64))
    result = run("apply", big, "-k", "box:3", "--max-pixels", "1000", "-o", tmp_path / "o.tif")
    assert result.exit_code == 0 and os.path.exists(tmp_path / "o.tif")
    result = run(
        "apply",
        images["RGB 8-bit"],
        "-k",
        "box:3",
        "--max-pixels",
        "1000",
        "-o",
        tmp_path / "p.png",
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "vips tiffsave" in result.output
    assert "astronaut.tif --tile --bigtiff" in result.output


def test_an_output_larger_than_the_free_disk_is_refused_before_any_block(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, np.zeros((100, 100), np.float32), tile=(32, 32))
    result = run("apply", source, "-k", "box:3", "--chunks", "32", "-o", tmp_path / "o.npy")
    assert result.exit_code == 1
    assert "the output takes 39 KiB" not in result.output  # sizes in the file's own units
    assert "has 0 MiB free" in result.output and "o.npy" in result.output
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--chunks", "0", "block sizes are positive"),
        ("--chunks", "a,b", "is not an integer or H,W"),
        ("--scheduler", "thread", "use threads, processes, local:N or tcp://HOST:PORT"),
        ("--tile", "100", "TIFF tiles are multiples of 16 pixels a side; use 96 or 112"),
    ],
)
def test_bad_block_options_are_usage_errors_before_any_input_is_read(
    tmp_path, option, value, message
):
    result = run(
        "apply", tmp_path / "none.png", "-k", "box:3", option, value, "-o", tmp_path / "o.png"
    )
    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1


def test_a_batch_on_workers_cannot_read_standard_input(tmp_path, images):
    result = run(
        "apply",
        "-",
        images["RGB 8-bit"],
        "-k",
        "box:3",
        "--scheduler",
        "processes",
        "-o",
        tmp_path / "{index}.png",
    )
    assert result.exit_code == 2 and "cannot read standard input" in result.output


# The streamed 1 GiB TIFF ----------------------------------------------------------------------

SIDE = 16384  # float32: 1 GiB
LIMIT = 1536 << 20  # address space: the in-memory job needs about 6 GiB of it
PEAK_RSS = 400 << 20

MEASURE = """
import resource, subprocess, sys
limit = int(sys.argv[1])
def limited():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
code = subprocess.run(sys.argv[2:], preexec_fn=limited).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _big_tiff(path) -> None:
    """A 1 GiB float32 tiled TIFF, written from one repeated tile in a fraction of a second."""
    tile = (np.add.outer(np.arange(512), np.arange(512)) % 97 / 97).astype(np.float32)
    tiles = (tile for _ in range((SIDE // 512) ** 2))
    tifffile.imwrite(path, tiles, shape=(SIDE, SIDE), dtype=np.float32, tile=(512, 512))


def test_a_1_gib_tiff_streams_under_an_address_space_limit_the_in_memory_job_exceeds(tmp_path):
    steps = [pipeline.Step(load_filter("gaussian:9"))]
    assert pipeline.estimate_bytes((1, 1, SIDE, SIDE), steps) > 3 * LIMIT
    _big_tiff(tmp_path / "slide.tif")
    command = [
        sys.executable,
        "-m",
        "convcli",
        "apply",
        str(tmp_path / "slide.tif"),
        "-k",
        "gaussian:9",
        "-o",
        str(tmp_path / "out.tif"),
        "-q",
    ]
    env = dict(os.environ, MALLOC_ARENA_MAX="2", OPENBLAS_NUM_THREADS="1")
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(LIMIT), *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    code, peak = map(int, measured.stdout.split())
    assert code == 0, measured.stderr
    assert peak <= PEAK_RSS, f"peak RSS {peak / 2**20:.0f} MiB"
    with tifffile.TiffFile(tmp_path / "out.tif") as written:
        page = written.pages[0]
        assert page.is_tiled and page.shape == (SIDE, SIDE) and page.dtype == np.uint16

    # A window away from the borders, read by region: the filtered pattern, as the
    # library computes it.
    def window(path, rows, cols):
        return open_regions(str(path)).read_region(slice(0, 1), slice(0, 1), rows, cols)

    pattern = window(tmp_path / "slide.tif", slice(4000, 4100), slice(5000, 5100))
    weight = steps[0].filter.weight[None, None].astype(np.float32)
    expected = to_integers(conv2d(pattern, weight), 16)
    got = to_integers(window(tmp_path / "out.tif", slice(4004, 4096), slice(5004, 5096)), 16)
    np.testing.assert_array_equal(got, expected)


# On a real cluster: a LocalCluster reached by its address -------------------------------------


def test_a_big_tiff_on_a_cluster_is_the_in_memory_result(tmp_path, cluster_address):
    pixels = np.random.default_rng(4).integers(0, 65536, (1500, 1700, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", pixels, tile=(256, 256), compression="zlib")
    common = [tmp_path / "big.tif", "-k", "gaussian:9", "-k", "sobel", "-q"]
    report = tmp_path / "cluster.jsonl"
    result = run(
        "apply",
        *common,
        "--scheduler",
        cluster_address,
        "-o",
        tmp_path / "c.tif",
        "--report",
        report,
    )
    assert result.exit_code == 0, result.output
    assert (
        run("apply", *common, "-o", tmp_path / "m.tif", "--report", tmp_path / "m.jsonl").exit_code
        == 0
    )
    assert_same_pixels(str(tmp_path / "c.tif"), str(tmp_path / "m.tif"), exact=True)
    assert _records(report) == _records(tmp_path / "m.jsonl")


def test_a_batch_on_a_cluster_reports_each_file_and_a_corrupt_one_as_an_error(
    tmp_path, cluster_address
):
    rng = np.random.default_rng(6)
    names = [f"{n:02}.png" for n in range(9)]
    for name in names:
        write_image(rng.random((3, 40, 50), dtype=np.float32), str(tmp_path / name))
    (tmp_path / "05.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    inputs = [tmp_path / name for name in names]
    (tmp_path / "c").mkdir(), (tmp_path / "m").mkdir()
    result = run(
        "apply",
        *inputs,
        "-k",
        "sobel",
        "--scheduler",
        cluster_address,
        "-o",
        tmp_path / "c/",
        "--report",
        tmp_path / "c.jsonl",
        "-q",
    )
    assert result.exit_code == 1
    assert result.output.count("Error:") == 1 and "05.png" in result.output
    run(
        "apply",
        *inputs,
        "-k",
        "sobel",
        "-o",
        tmp_path / "m/",
        "--report",
        tmp_path / "m.jsonl",
        "-q",
    )
    assert (
        sorted(os.listdir(tmp_path / "c"))
        == sorted(os.listdir(tmp_path / "m"))
        == sorted(name for name in names if name != "05.png")
    )
    for name in os.listdir(tmp_path / "m"):  # the same bytes as the local batch wrote
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "m" / name).read_bytes()

    def by_input(path):
        with open(path) as lines:
            records = [json.loads(line) for line in lines]
        for record in records:
            record.pop("seconds", None), record.pop("filter_seconds", None)
            record["output"] = os.path.basename(record["output"])
        return sorted(records, key=lambda record: record["input"])

    # Streamed back as partitions finish: the same records, in any order.
    assert by_input(tmp_path / "c.jsonl") == by_input(tmp_path / "m.jsonl")
    assert [r for r in by_input(tmp_path / "c.jsonl") if "error" in r][0]["input"].endswith(
        "05.png"
    )


def test_a_batch_on_local_processes_is_the_local_batch(tmp_path, images):
    inputs = [images["gray 8-bit"], images["RGBA 8-bit"], images["RGB 16-bit"]]
    (tmp_path / "p").mkdir(), (tmp_path / "t").mkdir()
    common = ["-k", "gaussian:5", "-k", "sobel-x", "--range", "abs", "-q"]
    result = run("apply", *inputs, *common, "--scheduler", "processes", "-o", tmp_path / "p/")
    assert result.exit_code == 0, result.output
    assert run("apply", *inputs, *common, "-o", tmp_path / "t/").exit_code == 0
    for name in os.listdir(tmp_path / "t"):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "t" / name).read_bytes()
    assert len(os.listdir(tmp_path / "p")) == 3


def test_an_image_in_blocks_on_local_processes_is_the_in_memory_result(tmp_path):
    pixels = np.random.default_rng(11).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", pixels, tile=(64, 64))
    common = [tmp_path / "in.tif", "-k", "gaussian:9", "-k", "sobel", "-q"]
    blocked = ["--chunks", "64", "--scheduler", "processes", "--report", tmp_path / "p.jsonl"]
    assert run("apply", *common, *blocked, "-o", tmp_path / "p.tif").exit_code == 0
    whole = ["--report", tmp_path / "m.jsonl"]
    assert run("apply", *common, *whole, "-o", tmp_path / "m.tif").exit_code == 0
    assert_same_pixels(str(tmp_path / "p.tif"), str(tmp_path / "m.tif"), exact=True)
    assert _records(tmp_path / "p.jsonl") == _records(tmp_path / "m.jsonl")


WITHOUT_DASK = """
import sys
for name in ("dask", "distributed", "zarr"):
    sys.modules[name] = None  # as if the [dask] extra were not installed
from convcli.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_dask_extra_what_fits_runs_and_what_needs_blocks_names_the_install(tmp_path):
    def convcli(*args):
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_DASK, "apply", *map(str, args), "-k", "box:3", "-q"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )

    camera = SAMPLES / "camera.png"
    assert convcli(camera, "-o", tmp_path / "a.tif").returncode == 0  # in memory, as always

    def refused(result, reason: str) -> None:
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
        assert reason in result.stderr
        assert result.stderr.strip().endswith("pip install 'convcli[dask]'")

    # Known from the command line: refused before any input is read (this one is missing).
    missing = tmp_path / "missing.png"
    refused(convcli(missing, "--chunks", "64", "-o", tmp_path / "b.tif"), "--chunks 64")
    refused(convcli(missing, "--scheduler", "processes", "-o", tmp_path / "b.tif"), "processes")
    refused(convcli(missing, "--scheduler", "local:2", "-o", tmp_path / "b.png"), "local:2")
    refused(convcli(missing, "-o", tmp_path / "b.zarr"), "zarr")
    # Known once an input's header is read: that input is refused before it is filtered,
    # and the others go on.
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((300, 400), np.uint8), tile=(64, 64))
    write_image(np.zeros((1, 1, 30, 40), np.float32), str(tmp_path / "small.png"))
    (tmp_path / "out").mkdir()
    inputs = [tmp_path / "big.tif", tmp_path / "small.png"]
    result = convcli(*inputs, "--max-pixels", 200 * 300, "-o", f"{tmp_path / 'out'}/")
    refused(result, "big.tif: too large to filter in memory: filtering in blocks")
    assert os.listdir(tmp_path / "out") == ["small.png"]
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "big.tif", "out", "small.png"]


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy"])
def test_ctrl_c_in_blocks_leaves_no_output_nor_temporary(tmp_path, suffix):
    source = tmp_path / "in.tif"
    pixels = np.random.default_rng(8).random((4096, 4096), dtype=np.float32)
    tifffile.imwrite(source, pixels, tile=(256, 256))
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convcli",
            "apply",
            str(source),
            "-k",
            "gaussian:31",
            "--chunks",
            "256",
            "-o",
            str(out / f"result{suffix}"),
            "-q",
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in out.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    time.sleep(0.2)  # some blocks written
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert list(out.iterdir()) == []


def test_the_scheduler_comes_from_the_environment_too(tmp_path, images):
    result = CliRunner().invoke(
        cli,
        ["apply", "-", images["RGB 8-bit"], "-k", "box:3", "-o", str(tmp_path / "{index}.png")],
        env={"CONVCLI_SCHEDULER": "processes"},
    )
    assert result.exit_code == 2 and "--scheduler processes runs each file on a worker" in (
        result.output
    )


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        (".jpg", []),  # flattened over white for want of alpha
        (".tif", ["--background", "#336699"]),
        (".npy", ["--background", "red"]),
        (".png", ["--depth", "16"]),
    ],
)
def test_alpha_flattened_in_blocks_as_in_memory(tmp_path, images, suffix, options):
    common = [images["RGBA 8-bit"], "-k", "gaussian:5", *options, "-q"]
    blocked, whole = tmp_path / f"b{suffix}", tmp_path / f"w{suffix}"
    r1 = run("apply", *common, "--chunks", "64", "-o", blocked, "--report", tmp_path / "b.jsonl")
    r2 = run("apply", *common, "-o", whole, "--report", tmp_path / "w.jsonl")
    assert r1.exit_code == r2.exit_code == 0, r1.output + r2.output
    assert r1.output.replace("b" + suffix, "w" + suffix) == r2.output
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(blocked), np.load(whole))
    else:
        assert_same_pixels(str(blocked), str(whole), exact=True)
    assert _records(tmp_path / "b.jsonl") == _records(tmp_path / "w.jsonl")


def test_a_tiffs_icc_profile_reaches_the_tiff_written_in_blocks(tmp_path):
    from tests.images.test_metadata import P3

    pixels = np.random.default_rng(9).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p3.tif", pixels, tile=(64, 64), iccprofile=P3)
    for name, extra in (("b.tif", ["--chunks", "64"]), ("s.tif", ["--chunks", "64", "--strip"])):
        assert (
            run(
                "apply", tmp_path / "p3.tif", "-k", "box:3", *extra, "-o", tmp_path / name, "-q"
            ).exit_code
            == 0
        )
    with (
        tifffile.TiffFile(tmp_path / "b.tif") as blocked,
        tifffile.TiffFile(tmp_path / "s.tif") as stripped,
    ):
        assert blocked.pages[0].is_tiled and blocked.pages[0].tags.valueof(34675) == P3
        assert stripped.pages[0].tags.valueof(34675) is None


@pytest.mark.parametrize("blocks", [[], ["--chunks", "4"]])
def test_normalize_stretches_the_finite_values_of_an_image_holding_inf(tmp_path, blocks):
    # An Inf made the whole image 0 (min..max was -Inf..Inf), and the report bare Infinity.
    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    x[2, 2], x[5, 5] = np.inf, -np.inf
    np.save(tmp_path / "in.npy", x)
    out, report = tmp_path / "out.png", tmp_path / "r.jsonl"
    args = ["-k", "1", "--range", "normalize", "--depth", "16", "--report", str(report)]
    result = run("apply", str(tmp_path / "in.npy"), *args, *blocks, "-o", str(out))
    assert result.exit_code == 0 and result.exception is None, result.output
    pixels = read_image(str(out)).pixels[0, 0]
    finite = np.isfinite(x)
    expected = (x[finite] - x[finite].min()) / (x[finite].max() - x[finite].min())
    np.testing.assert_allclose(pixels[finite], expected, atol=1 / 65535)
    assert pixels[2, 2] == 1.0 and pixels[5, 5] == 0.0
    record = json.loads(report.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert record["min"] is None and record["max"] is None and record["clipped_high"] == 1


@pytest.mark.parametrize("blocks", [[], ["--chunks", "4"]])
def test_normalize_leaves_transparency_as_it_is(tmp_path, blocks):
    # Alpha was stretched with the colours (alpha 100 became 128, 200 became 255).
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = np.arange(8) * 10 + 50
    rgba[..., 3] = np.where(np.arange(8) < 4, 100, 200)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    result = run(
        "apply",
        str(tmp_path / "in.png"),
        "-k",
        "1",
        "--range",
        "normalize",
        *blocks,
        "-o",
        str(out),
    )
    assert result.exit_code == 0 and result.exception is None, result.output
    pixels = np.asarray(PILImage.open(out))
    np.testing.assert_array_equal(pixels[..., 3], rgba[..., 3])
    # the colours stretched together: green and blue are 0, red's largest value is white
    assert pixels[..., 0].max() == 255 and pixels[..., 1:3].max() == 0
    expected = np.round(rgba[0, :, 0] / 120 * 255)
    np.testing.assert_allclose(pixels[0, :, 0], expected, atol=1)


@pytest.mark.parametrize("kernel", ["0 -1 0; -1 5 -1; 0 -1 0", "laplacian", "1 1 1; 1 1 1; 1 1 1"])
@pytest.mark.parametrize("image", ["RGB 8-bit", "gray 8-bit"])
def test_integer_kernels_report_the_same_exact_counts_in_blocks(tmp_path, images, image, kernel):
    """In memory an integer kernel sums an 8-bit image in integers; blocks sum floats and
    round them back to those integers: the same pixels and the same exact report."""
    common = [images[image], "-k", kernel, "-q"]
    blocked, whole = tmp_path / "blocked.png", tmp_path / "whole.png"
    r1 = run("apply", *common, "--chunks", "64", "-o", blocked, "--report", tmp_path / "b.jsonl")
    r2 = run("apply", *common, "-o", whole, "--report", tmp_path / "w.jsonl")
    assert r1.exit_code == r2.exit_code == 0, r1.output + r2.output
    assert_same_pixels(str(blocked), str(whole), exact=True)
    record = _records(tmp_path / "w.jsonl")
    assert _records(tmp_path / "b.jsonl") == record
    stored = _integers(images[image]).astype(np.int64)
    weight = load_filter(kernel).weight
    pads = (1, 1, 1, 1)
    exact = ref_conv2d(
        stored,
        np.broadcast_to(weight, (stored.shape[1], 1, 3, 3)),
        pads=pads,
        groups=stored.shape[1],
        mode="reflect",
    )
    assert record[0]["clipped_low"] == int((exact < 0).sum())
    assert record[0]["clipped_high"] == int((exact > 255).sum())
    assert record[0]["min"] == float(np.float32(exact.min()) / np.float32(255))
