"""The vendored sample datasets: what the app offers is there, small, 64 px RGB, and credited."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from core.datasets import DatasetError
from core.sample_data import DATASETS_DIR, DEMO_SAMPLE, SAMPLES, sample_dataset


def test_every_sample_is_a_zip_of_64px_rgb_pngs_named_in_the_notice():
    notice = (DATASETS_DIR / "NOTICE").read_text()
    total = 0
    for s in SAMPLES.values():
        total += s.path.stat().st_size
        with zipfile.ZipFile(s.path) as z:
            names = z.namelist()
            assert len(names) == s.count() >= 200, s.key
            for name in names[:: max(len(names) // 20, 1)]:
                with Image.open(io.BytesIO(z.read(name))) as im:
                    assert (im.format, im.mode, im.size) == ("PNG", "RGB", (64, 64)), name
        assert f"{s.file} ({s.count()} images)" in notice, s.file
        assert s.mosaic().size == (192, 192)
    assert total <= 5 * 1024 * 1024
    for licence in ("CC-BY-4.0.txt", "Apache-2.0.txt"):
        assert licence in notice and (DATASETS_DIR / "licenses" / licence).stat().st_size > 5_000


def test_unknown_sample_is_one_line_with_the_choices():
    assert sample_dataset(DEMO_SAMPLE).key == DEMO_SAMPLE
    with pytest.raises(DatasetError, match="unknown sample dataset 'x+': choose flags, emoji-faces, emoji-animals"):
        sample_dataset("x" * 500)
