"""run_batch with images in flight side by side: everything still in input order."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from convcli.conv.engines import thread_count
from convcli.jobs import pipeline, run
from convcli.jobs.pipeline import Step
from convcli.kernels import load_filter

STEPS = [Step(load_filter("box:3"))]


class Recorded:
    """Every event, in the order it came."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def warn(self, warnings):
        self.events += [("warn", w) for w in warnings]

    def done(self, record):
        self.events.append(("done", record.input, os.path.exists(record.output)))

    def failed(self, error, path, target):
        self.events.append(("failed", path, str(error)))

    def progress(self, count):
        pass

    def kinds(self) -> list[tuple[str, str]]:
        return [(event[0], Path(event[1]).name) for event in self.events if event[0] != "warn"]


@pytest.fixture
def images(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    paths = []
    for index in range(6):
        path = tmp_path / f"in{index}.png"
        PILImage.fromarray(np.full((9, 7), 40 * index, np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "out").mkdir()
    return paths


def targets(paths: list[str]) -> list[str]:
    return [str(Path(p).parent / "out" / Path(p).name) for p in paths]


def slow_first(monkeypatch, seconds: float = 0.3) -> None:
    """The first input's filtering takes longest: later ones finish before it."""
    real = pipeline.apply_steps

    def apply_steps(x, steps, **kwargs):
        if x[0, 0, 0, 0] == 0:  # in0.png is all zeros
            time.sleep(seconds)
        return real(x, steps, **kwargs)

    monkeypatch.setattr(pipeline, "apply_steps", apply_steps)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_events_and_outputs_come_in_input_order(images, monkeypatch):
    slow_first(monkeypatch)
    events = Recorded()
    assert run.run_batch(images, targets(images), STEPS, run.JobOptions(), events) == 0
    assert events.kinds() == [("done", f"in{i}.png") for i in range(6)]
    # Each output was in place when its record came, and none before its turn:
    assert all(event[2] for event in events.events if event[0] == "done")


def test_outputs_appear_in_input_order(images, monkeypatch):
    slow_first(monkeypatch)
    seen: list[str] = []

    class Watching(Recorded):
        def done(self, record):
            super().done(record)
            out = Path(record.output).parent
            seen.append(sorted(p.name for p in out.iterdir() if not p.name.startswith(".")))

    run.run_batch(images, targets(images), STEPS, run.JobOptions(), Watching())
    assert seen == [[f"in{i}.png" for i in range(n + 1)] for n in range(6)]


def test_fail_fast_leaves_no_later_output_though_later_inputs_finished(images, monkeypatch):
    slow_first(monkeypatch)
    Path(images[1]).write_text("not an image")
    events = Recorded()
    worst = run.run_batch(images, targets(images), STEPS, run.JobOptions(fail_fast=True), events)
    assert worst == 1
    assert events.kinds() == [("done", "in0.png"), ("failed", "in1.png")]
    out = Path(images[0]).parent / "out"
    assert sorted(p.name for p in out.iterdir()) == ["in0.png"]  # no temporaries either


def test_a_failure_is_reported_in_its_place_and_the_rest_go_on(images, monkeypatch):
    slow_first(monkeypatch)
    Path(images[2]).write_text("not an image")
    events = Recorded()
    assert run.run_batch(images, targets(images), STEPS, run.JobOptions(), events) == 1
    expected = [("done", f"in{i}.png") for i in range(6)]
    expected[2] = ("failed", "in2.png")
    assert events.kinds() == expected


def test_an_image_short_of_memory_beside_others_runs_again_alone(images, monkeypatch):
    real = pipeline.apply_steps
    lock = threading.Lock()
    active, calls = [0], []  # images being filtered now; (first value, others active)

    def apply_steps(x, steps, **kwargs):
        with lock:
            calls.append((x[0, 0, 0, 0], active[0]))
            active[0] += 1
        try:
            if len(calls) == 1:
                time.sleep(0.1)  # the others get going meanwhile
                raise MemoryError
            time.sleep(0.02)
            return real(x, steps, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(pipeline, "apply_steps", apply_steps)
    events = Recorded()
    assert run.run_batch(images, targets(images), STEPS, run.JobOptions(), events) == 0
    assert events.kinds() == [("done", f"in{i}.png") for i in range(6)]
    first, _ = calls[0]
    retries = [others for value, others in calls[1:] if value == first]
    assert retries == [0]  # tried once more, with nothing else being filtered
    assert max(others for _, others in calls) >= 1  # while images did run side by side


def test_alone_an_image_short_of_memory_fails(images, monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "1")

    def apply_steps(x, steps, **kwargs):
        raise MemoryError

    monkeypatch.setattr(pipeline, "apply_steps", apply_steps)
    events = Recorded()
    assert run.run_batch(images[:1], targets(images[:1]), STEPS, run.JobOptions(), events) == 1
    assert (
        events.events[-1][2]
        == "ran out of memory filtering it; use smaller images, or fewer at once"
    )


def test_small_images_filter_on_their_worker_large_ones_on_every_thread(images, monkeypatch):
    monkeypatch.setattr(run, "LARGE", 9 * 7 * 3)  # in3.png onwards count as large
    for index in (3, 4, 5):
        PILImage.new("RGB", (7, 9), (index, 0, 0)).save(images[index])
    real = pipeline.apply_steps
    threads: dict[int, int] = {}

    def apply_steps(x, steps, **kwargs):
        threads[x.shape[1]] = max(threads.get(x.shape[1], 0), thread_count())
        return real(x, steps, **kwargs)

    monkeypatch.setattr(pipeline, "apply_steps", apply_steps)
    assert run.run_batch(images, targets(images), STEPS, run.JobOptions(), Recorded()) == 0
    assert threads == {1: 1, 3: thread_count()}


def test_frames_of_inputs_in_flight_together_never_share_a_file(images, tmp_path):
    frames = [PILImage.new("L", (5, 4), v) for v in (0, 100)]
    gifs = []
    for name in ("a.gif", "b.gif"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        gifs.append(str(tmp_path / name))
    template = str(tmp_path / "out" / "f{frame}.png")
    events = Recorded()
    assert run.run_batch(gifs, [template, template], STEPS, run.JobOptions(), events) == 2
    assert events.kinds()[0] == ("done", "a.gif")
    assert events.kinds()[1] == ("failed", "b.gif") and "written twice" in events.events[-1][2]
    assert sorted(os.listdir(tmp_path / "out")) == ["f0.png", "f1.png"]


def test_a_failed_fsync_fails_that_input_only(images, monkeypatch):
    real = os.fsync
    failing = {}

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part") and not failing:
            failing["fd"] = fd
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    events = Recorded()
    assert run.run_batch(images, targets(images), STEPS, run.JobOptions(), events) == 1
    failed = [event for event in events.events if event[0] == "failed"]
    assert len(failed) == 1 and "No space left" in failed[0][2]
    out = Path(images[0]).parent / "out"
    assert leftovers(out) == [] and len(os.listdir(out)) == 5


def test_each_records_seconds_run_from_its_own_read_to_its_outputs(images, monkeypatch):
    """Side by side, every image's wall time counts its read (also a stream's, read on
    the calling thread before its job starts) and its filtering."""
    from convcli.jobs import one_file

    real_read = one_file.read_input

    def slow_read(path, max_pixels):
        time.sleep(0.2)
        return real_read(path, max_pixels)

    monkeypatch.setattr(one_file, "read_input", slow_read)
    monkeypatch.setattr(run, "read_input", slow_read)
    monkeypatch.setattr(run, "is_stream", lambda path: path == images[1])  # read here
    slow_first(monkeypatch, 0.3)
    records = []

    class Kept(Recorded):
        def done(self, record):
            records.append(record)

    assert run.run_batch(images[:3], targets(images[:3]), STEPS, run.JobOptions(), Kept()) == 0
    assert [Path(r.input).name for r in records] == ["in0.png", "in1.png", "in2.png"]
    assert records[0].filter_seconds >= 0.3 and records[0].seconds >= 0.5
    for record in records[1:]:  # in1.png's read happened before its job began
        assert record.seconds >= 0.2 + record.filter_seconds
