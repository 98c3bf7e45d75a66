"""The sample datasets that ship with Atelier: real artwork, vendored small in static/datasets/.

Each is a zip of 64x64 RGB PNGs that scripts/build_sample_datasets.py makes from the npm package
that ships the images; static/datasets/NOTICE gives their licences and authors. ``emoji-faces``
is what the bundled default model was trained on; ``flags`` is the clearly different set a
newcomer transfers it to first (the default of the "Use the sample dataset" button).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .checkpoints.entries import DEFAULT_NAME
from .datasets import DatasetError

DATASETS_DIR = Path(__file__).resolve().parents[1] / "static" / "datasets"


@dataclass(frozen=True)
class SampleDataset:
    key: str
    name: str          # the dataset name it gets when imported
    file: str          # zip under static/datasets/
    what: str          # one line: what the images are
    credit: str        # one line: whose images, under which licence

    @property
    def path(self) -> Path:
        return DATASETS_DIR / self.file

    def count(self) -> int:
        with zipfile.ZipFile(self.path) as z:
            return sum(1 for n in z.namelist() if n.endswith(".png"))

    def mosaic(self, columns: int = 3, rows: int = 3) -> Image.Image:
        """A strip of evenly spaced images from the set, for a card."""
        with zipfile.ZipFile(self.path) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".png"))
            step = max(len(names) // (columns * rows), 1)
            tiles = [Image.open(io.BytesIO(z.read(n))).convert("RGB") for n in names[::step][:columns * rows]]
        size = tiles[0].width
        sheet = Image.new("RGB", (columns * size, rows * size), (255, 255, 255))
        for i, tile in enumerate(tiles):
            sheet.paste(tile, (i % columns * size, i // columns * size))
        return sheet


SAMPLES = {s.key: s for s in (
    SampleDataset("flags", "Sample flags", "flags.zip", "flags of the countries of the world",
                  "country-flags by Hampus Nilsson, from Wikimedia Commons: public domain"),
    SampleDataset("emoji-faces", "Sample emoji faces", "emoji-faces.zip", "emoji faces and heads",
                  "Twemoji (CC BY 4.0) and Noto Emoji (Apache 2.0)"),
    SampleDataset("emoji-animals", "Sample emoji animals", "emoji-animals.zip", "emoji animals and plants",
                  "Twemoji (CC BY 4.0) and Noto Emoji (Apache 2.0)"),
)}
DEMO_SAMPLE = "flags"          # the first transfer a newcomer runs from the default model
DEMO_STEPS = 600               # suggested for it: see docs/benchmarks.md (the demo transfer)
DEMO_SNAPSHOT_EVERY = 100
DEFAULT_MODEL_SAMPLE = "emoji-faces"


def sample_dataset(key: str) -> SampleDataset:
    """The sample set for a key; DatasetError with the choices for an unknown one."""
    if key not in SAMPLES:
        raise DatasetError(f"unknown sample dataset {str(key)[:40]!r}: choose {', '.join(SAMPLES)}")
    return SAMPLES[key]


def suggested_run(dataset_name: str, checkpoint: str) -> dict | None:
    """The demo's steps and snapshot interval when a sample set (other than the default model's own)
    is fine-tuned from the bundled default model; None otherwise."""
    others = {s.name for s in SAMPLES.values() if s.key != DEFAULT_MODEL_SAMPLE}
    if checkpoint == DEFAULT_NAME and dataset_name in others:
        return {"steps": DEMO_STEPS, "snapshot_every": DEMO_SNAPSHOT_EVERY}
    return None
