"""Uploaded files staged as import sources: dropped folder paths kept, malformed ones refused with
one line before any folder is made."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import datasets
from core.datasets import stage_uploads

from datasets_fixtures import jpeg_bytes, pattern


@pytest.fixture()
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    folder = tmp_path / "gradio"                     # as Gradio keeps uploads: <hash>/<original name>
    paths = []
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        p = folder / f"h{i}" / name
        p.parent.mkdir(parents=True)
        p.write_bytes(jpeg_bytes(pattern(i, (80, 80))))
        paths.append(p)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return paths, scratch


def _rel(paths, *rels):
    return json.dumps([{"path": r, "name": p.name, "size": p.stat().st_size} for p, r in zip(paths, rels)])


def _staged(scratch: Path) -> list[str]:
    root = scratch / "upload"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_dropped_folders_are_kept(uploads):
    paths, scratch = uploads
    sources = stage_uploads(paths, _rel(paths, "trip/day1/a.jpg", "trip/b.jpg", "../c.jpg"), scratch)
    assert sources == [str(scratch / "upload")]
    assert _staged(scratch) == ["c.jpg", "trip/b.jpg", "trip/day1/a.jpg"]
    assert datasets.import_dataset(sources, "Trip").accepted == 3


DEEP = "/".join(["d"] * 3000) + "/a.jpg"


@pytest.mark.parametrize("relpaths, message", [
    ("[1]", "The upload's list of folder paths is malformed (entry 1 is not {path, name, size})."),
    ("[{", "The upload's list of folder paths is malformed (not valid JSON)."),
    ('{"path": "a.jpg"}', "The upload's list of folder paths is malformed (not a list)."),
    ("[" * 100_000 + "]" * 100_000, "The upload's list of folder paths is malformed (not valid JSON)."),
    ('[{"path": "a.jpg", "name": "a.jpg", "size": "12"}]', "(entry 1 is not {path, name, size})"),
    (None, None),
])
def test_malformed_lists_are_refused_in_one_line(uploads, relpaths, message):
    paths, scratch = uploads
    if message is None:       # no list at all: the files keep their own names
        assert stage_uploads(paths, relpaths, scratch) == [str(scratch / "upload")]
        assert _staged(scratch) == ["a.jpg", "b.jpg", "c.jpg"]
        return
    with pytest.raises(datasets.DatasetError) as e:
        stage_uploads(paths, relpaths, scratch)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert list(scratch.iterdir()) == []             # nothing made


@pytest.mark.parametrize("bad, message", [
    ("trip/a\0.jpg", "A dropped file's path holds a NUL byte."),
    ("trip/" + "x" * 300 + ".jpg", "A dropped file or folder name is longer than 255 bytes"),
    (DEEP, "A dropped file lies 3,000 folders deep; at most 32 are read."),
    ("x/" * 20 + "y" * 1100, "characters long; at most 1,024 are read."),
    ("trip/new\nline.jpg", "holds a control character"),
])
def test_bad_paths_are_refused_before_any_folder_is_made(uploads, bad, message):
    paths, scratch = uploads
    with pytest.raises(datasets.DatasetError) as e:
        stage_uploads(paths, _rel(paths, "ok/a.jpg", bad, "c.jpg"), scratch)
    assert message in str(e.value) and "\n" not in str(e.value) and len(str(e.value)) < 200
    assert list(scratch.iterdir()) == []


def test_a_file_and_a_folder_of_one_name_are_both_kept(uploads):
    paths, scratch = uploads
    sources = stage_uploads(paths, _rel(paths, "pics", "pics/b.jpg", "pics"), scratch)
    assert _staged(scratch) == ["__pics", "_pics", "pics/b.jpg"]
    report = datasets.import_dataset(sources, "Clash")
    assert report.accepted == 3


def test_zips_are_sources_of_their_own_and_nothing_is_no_images(uploads, tmp_path):
    import zipfile
    paths, scratch = uploads
    z = tmp_path / "more.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(paths[0], "x.jpg")
    assert stage_uploads([z], "", scratch) == [str(z)]
    with pytest.raises(datasets.DatasetError, match="Add some images first"):
        stage_uploads([], "", scratch)
