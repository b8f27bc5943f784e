"""tifffile's and imagecodecs' log messages: caught per thread, never on stderr."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from convcli.images import codecs


def test_each_thread_gets_its_own_records():
    codecs.tifffile()
    started, release = threading.Event(), threading.Event()
    theirs: list[str] = []

    def other() -> None:
        with codecs.logged() as records:
            started.set()
            release.wait(5)
            logging.getLogger("imagecodecs").warning("theirs")
        theirs.extend(r.getMessage() for r in records)

    thread = threading.Thread(target=other)
    thread.start()
    started.wait(5)
    with codecs.logged() as mine:
        logging.getLogger("tifffile").error("mine")
        release.set()
        thread.join(5)
    assert [r.getMessage() for r in mine] == ["mine"] and theirs == ["theirs"]


def test_an_outer_block_also_sees_an_inner_blocks_records():
    with codecs.logged() as outer, codecs.logged() as inner:
        logging.getLogger("tifffile").warning("once")
    assert [r.getMessage() for r in inner] == [r.getMessage() for r in outer] == ["once"]


def test_nothing_reaches_stderr_without_logging_set_up():
    script = (
        "import logging\n"
        "from convcli.images import codecs\n"
        "codecs.tifffile(), codecs.imagecodecs()\n"
        "logging.getLogger('tifffile').error('outside any block')\n"
        "with codecs.logged():\n"
        "    logging.getLogger('imagecodecs').warning('PNG warning: inside')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""


def test_an_application_that_sets_up_logging_still_gets_the_records():
    script = (
        "import logging\n"
        "logging.basicConfig(format='%(name)s: %(message)s')\n"
        "from convcli.images import codecs\n"
        "codecs.tifffile()\n"
        "with codecs.logged():\n"
        "    logging.getLogger('tifffile').warning('odd tag')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stderr == "tifffile: odd tag\n"
