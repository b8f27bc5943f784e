"""Where the repository's shipped files are, for tests in any folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
FILTERS = ROOT / "filters"
