"""core.datasets: ingest, validation report, crop modes, packed store, limits, zips, video."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.datasets.sources as sources_mod
from core.datasets import (DatasetError, DatasetExists, DatasetNotFound, crop_previews, delete_dataset,
                           get_dataset, import_dataset, import_folder_of_images_for_training, inflated_count,
                           list_datasets, open_packed, pack_dataset, sample_batch)
from core.storage import user_dir

from datasets_fixtures import jpeg_bytes, make_messy_folder, pattern, png_bytes


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def good_folder(root: Path, n: int, size=(96, 72)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"img_{i:03d}.jpg").write_bytes(jpeg_bytes(pattern(1000 + i, size)))
    return root


def dataset_dirs():
    return [p for p in user_dir("local", "datasets").iterdir() if p.is_dir()]


# --- the messy folder -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy") / "photos"
    return root, make_messy_folder(root)


def test_messy_folder_every_problem_reported(messy):
    root, expect = messy
    report = import_dataset([root], "messy", resolution=32)
    d = report.to_dict()
    rejected = {r["file"]: r["reason"] for r in d["rejected"]}
    accepted = set(d["accepted_files"])
    for name, outcome in expect.items():
        if outcome.startswith("reject:"):
            words = outcome.split(":", 1)[1]
            if words == "duplicate":  # the copy is dropped, the original kept; the pair is reported
                assert ["good_0.jpg", name] in d["exact_duplicates"] and ["good_0.jpg", name] in d["duplicates"]
            assert name in rejected, name
            assert words in rejected[name], (name, rejected[name])
        elif outcome == "near":
            assert name in accepted
            assert any(name in g and "good_1.jpg" in g for g in d["near_duplicates"])
            assert any(name in g for g in d["duplicates"])
        else:
            assert name in accepted, (name, rejected.get(name))
            if outcome != "ok":
                assert name in d["converted_files"][outcome], (name, d["converted_files"])
    assert d["accepted"] + len(d["rejected"]) == d["total"] == len(expect)
    assert ".hidden.jpg" in d["skipped"] and "__MACOSX/" in d["skipped"]
    assert d["converted"]["palette"] >= 1 and d["converted"]["grayscale"] >= 2
    assert any("animated" in w for w in d["warnings"]) and any("300" in w for w in d["warnings"])
    near = next(w for w in d["warnings"] if "near-duplicate" in w)      # names the files to review
    assert "good_1.jpg ≈ near_good_1.jpg" in near or "near_good_1.jpg ≈ good_1.jpg" in near, near
    json.dumps(d)  # the --json output is serialisable

    info = get_dataset("messy")
    files = {f["source"]: f for f in json.loads((Path(info["path"]) / "meta.json").read_text())["files"]}
    assert (files["rotated.jpg"]["width"], files["rotated.jpg"]["height"]) == (120, 160)  # EXIF applied
    deep = Image.open(Path(info["path"]) / "images" / files["deep16.png"]["file"])
    ref = np.asarray(pattern(27).convert("L"), dtype=np.float64)
    assert deep.mode == "RGB" and abs(np.asarray(deep)[..., 0].mean() - ref.mean()) < 2  # scaled, not clipped
    alpha = np.asarray(Image.open(Path(info["path"]) / "images" / files["alpha.png"]["file"]))
    assert (alpha[:, :40] == 255).all()  # composited on the white background


def test_pack_open_sample(messy):
    root, _ = messy
    rep = import_dataset([root], "packed", resolution=32, crop="random")
    ds = open_packed("packed", 32)
    assert len(ds) == rep.accepted and ds.crop == "random"
    rng = np.random.default_rng(0)
    draws = {ds.get(0, rng).tobytes() for _ in range(8)}
    assert len(draws) > 1  # the square moves between draws
    batch = sample_batch(ds, [0, 1, 2, 3], rng)
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == np.uint8
    # another resolution and crop, packed from the stored copies; idempotent
    p = pack_dataset("packed", 64, crop="center")
    mtime = (p / "data.u8").stat().st_mtime_ns
    assert pack_dataset("packed", 64, crop="center") == p and (p / "data.u8").stat().st_mtime_ns == mtime
    c = open_packed(p, 64)
    assert c.crop == "center" and c.get(2).shape == (3, 64, 64)
    assert sorted(get_dataset("packed")["resolutions"]) == [32, 64]
    with pytest.raises(DatasetError):
        pack_dataset("packed", 48)


def test_crop_modes_shapes(tmp_path):
    src = tmp_path / "wide"
    src.mkdir()
    (src / "w.png").write_bytes(png_bytes(pattern(5, (200, 100))))
    for crop in ("center", "none", "pad", "random"):
        import_dataset([src], f"c-{crop}", crop=crop, resolution=32)
        ds = open_packed(f"c-{crop}", 32)
        assert ds.get(0, np.random.default_rng(1)).shape == (3, 32, 32)
        assert ds.raw(0).shape == ((3, 32, 64) if crop == "random" else (3, 32, 32))
    pad = open_packed("c-pad", 32).get(0)
    assert (pad[:, 0, :] == 255).all()  # letterbox bars in the background colour
    prev = crop_previews([src], n=6, resolution=48)
    assert set(prev) == {"found", "labels", "center", "random", "random_2", "none", "pad"}
    assert prev["labels"] == ["w.png"] and prev["found"] == 1
    assert all(len(v) == 1 and v[0].size == (48, 48) for k, v in prev.items() if k not in ("labels", "found"))


def test_crop_previews_show_the_least_square_images(tmp_path):
    src = tmp_path / "mixed"
    (src / "sub dir").mkdir(parents=True)
    for i in range(8):                                     # square ones come first in file order
        (src / f"a{i}.png").write_bytes(png_bytes(pattern(i, (96, 96))))
    (src / "b-wide.png").write_bytes(png_bytes(pattern(20, (300, 100))))
    (src / "sub dir" / "c-tall.png").write_bytes(png_bytes(pattern(21, (100, 220))))
    (src / "d-slight.png").write_bytes(png_bytes(pattern(22, (120, 100))))
    prev = crop_previews([src], n=3, resolution=32)
    assert prev["labels"] == ["b-wide.png", "sub dir/c-tall.png", "d-slight.png"] and prev["found"] == 11
    assert prev["random"][0].tobytes() != prev["random_2"][0].tobytes()     # two draws of the random crop
    assert prev["center"][0].tobytes() != prev["none"][0].tobytes()


def test_inflation_counted(tmp_path):
    src = good_folder(tmp_path / "inf", 3)
    rep = import_dataset([src], "inf", resolution=32, inflate={"mirror": True, "rotate": True, "zoom": 2})
    assert rep.training_images == inflated_count(3, {"mirror": True, "rotate": True, "zoom": 2}) == 3 * 7
    assert len(open_packed("inf", 32)) == 21
    with pytest.raises(DatasetError):
        import_dataset([src], "inf2", inflate={"sparkle": True})


# --- names, replacement, limits ---------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "   ", "a/b", "..", "x..y", "a\\b", "nul\0", "x" * 101, "tab\there"])
def test_bad_names_refused(tmp_path, bad):
    with pytest.raises(DatasetError):
        import_dataset([tmp_path], bad)


def test_reimport_never_destroys_unless_asked(tmp_path):
    a = good_folder(tmp_path / "a", 3)
    b = good_folder(tmp_path / "b", 5, size=(80, 80))
    first = import_dataset([a], "set")
    with pytest.raises(DatasetExists):
        import_dataset([b], "set")
    assert get_dataset("set")["count"] == 3

    def boom(done, total):  # an import killed half way through
        if done == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        import_dataset([b], "set", replace=True, progress_fn=boom)
    assert get_dataset("set")["id"] == first.dataset_id and get_dataset("set")["count"] == 3
    assert [p.name for p in dataset_dirs()] == [first.dataset_id]  # no half-built leftovers

    second = import_dataset([b], "set", replace=True)
    assert get_dataset("set")["count"] == 5 and second.dataset_id != first.dataset_id
    assert [p.name for p in dataset_dirs()] == [second.dataset_id]


def test_limits_checked_before_anything_is_stored(tmp_path, monkeypatch):
    src = good_folder(tmp_path / "many", 6)
    monkeypatch.setattr(sources_mod, "MAX_IMAGES", 5)
    with pytest.raises(DatasetError, match="at most 5"):
        import_dataset([src], "many")
    monkeypatch.setattr(sources_mod, "MAX_IMAGES", 25_000)
    monkeypatch.setattr(sources_mod, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(DatasetError, match="at most"):
        import_dataset([src], "many")
    assert dataset_dirs() == [] and list_datasets() == []


def test_nothing_usable_is_an_error_with_report(tmp_path):
    src = tmp_path / "junk"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"")
    (src / "b.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="None of the 2") as e:
        import_dataset([src], "junk")
    assert len(e.value.report.rejected) == 2 and dataset_dirs() == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        import_dataset([tmp_path / "empty"], "empty")
    with pytest.raises(DatasetError, match="No such"):
        import_dataset([tmp_path / "missing"], "missing")


def test_list_get_delete(tmp_path):
    src = good_folder(tmp_path / "x", 2)
    rep = import_dataset([src], "x one", resolution=32)
    [item] = list_datasets()
    assert item["name"] == "x one" and item["id"] == rep.dataset_id and item["count"] == 2
    assert item["bytes"] > 0 and item["resolutions"] == [32] and Path(item["mosaic"]).exists()
    assert get_dataset(rep.dataset_id)["name"] == "x one"
    delete_dataset("x one")
    assert list_datasets() == [] and dataset_dirs() == []
    with pytest.raises(DatasetNotFound):
        get_dataset("x one")


def test_training_folder_reused_when_unchanged(tmp_path):
    src = good_folder(tmp_path / "portraits", 3)
    a = import_folder_of_images_for_training(src, resolution=32)
    assert import_folder_of_images_for_training(src) == a
    assert get_dataset(a)["name"] == "portraits"
    (src / "new.jpg").write_bytes(jpeg_bytes(pattern(77, (90, 90))))
    b = import_folder_of_images_for_training(src)
    assert b != a and get_dataset(b)["count"] == 4 and get_dataset(b)["name"] == "portraits (2)"


# --- zips, videos, merged sources, parallel workers ---------------------------------------------

def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_slip_refused_and_nothing_written_outside(tmp_path):
    z = _zip(tmp_path / "up.zip", {
        "ok/one.jpg": jpeg_bytes(pattern(1)), "two.PNG": png_bytes(pattern(2)),
        "../evil.jpg": jpeg_bytes(pattern(3)), "/abs.jpg": jpeg_bytes(pattern(4)),
        "a/../../evil2.jpg": jpeg_bytes(pattern(5)), "__MACOSX/._one.jpg": b"junk", "ok/.DS_Store": b"junk"})
    before = set(tmp_path.parent.rglob("*evil*"))
    rep = import_dataset([z], "zipped").to_dict()
    assert sorted(rep["accepted_files"]) == ["ok/one.jpg", "two.PNG"]
    reasons = {r["file"]: r["reason"] for r in rep["rejected"]}
    assert set(reasons) == {"../evil.jpg", "/abs.jpg", "a/../../evil2.jpg"}
    assert all("unsafe" in r for r in reasons.values())
    assert set(tmp_path.parent.rglob("*evil*")) == before
    assert not list(tmp_path.rglob("abs.jpg"))


def test_zip_caps(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", b"\0" * (40 * 1024**2))
        zf.writestr("fine.jpg", jpeg_bytes(pattern(9)))
    rep = import_dataset([bomb], "bomb").to_dict()
    assert "zip bomb" in rep["rejected"][0]["reason"] and rep["accepted"] == 1
    monkeypatch.setattr(sources_mod, "MAX_ZIP_MEMBERS", 1)
    with pytest.raises(DatasetError, match="entries"):
        import_dataset([bomb], "bomb2")
    monkeypatch.setattr(sources_mod, "MAX_ZIP_MEMBERS", 50_000)
    monkeypatch.setattr(sources_mod, "MAX_TOTAL_BYTES", 10 * 1024**2)
    with pytest.raises(DatasetError, match="unpacks to"):
        import_dataset([bomb], "bomb3")
    (tmp_path / "bad.zip").write_bytes(b"PK\3\4 not really")
    with pytest.raises(DatasetError, match="not a readable zip"):
        import_dataset([tmp_path / "bad.zip"], "bad")


def test_video_frames(tmp_path):
    import imageio.v2 as iio
    path = tmp_path / "clip.mp4"
    frames = [np.asarray(pattern(300 + i // 5, (96, 64))) for i in range(20)]  # 2 s at 10 fps
    iio.mimwrite(path, frames, fps=10, macro_block_size=16)
    rep = import_dataset([path], "clip", video_fps=2, resolution=32).to_dict()
    assert 3 <= rep["total"] <= 5 and rep["accepted"] >= 3
    assert all(f.startswith("clip.mp4#frame") for f in rep["accepted_files"])
    assert len(open_packed("clip", 32)) == rep["accepted"]


def test_merged_sources_in_parallel(tmp_path):
    folder = good_folder(tmp_path / "f", 26)
    z = _zip(tmp_path / "more.zip", {f"z{i}.jpg": jpeg_bytes(pattern(500 + i)) for i in range(3)})
    single = tmp_path / "solo.png"
    single.write_bytes(png_bytes(pattern(600)))
    rep = import_dataset([folder, z, single], "merged", resolution=32, workers=2).to_dict()
    assert rep["accepted"] == 30 and not rep["rejected"]
    assert rep["accepted_files"][0] == "f/img_000.jpg" and "more.zip/z0.jpg" in rep["accepted_files"]
    assert rep["accepted_files"][-1] == "solo.png/solo.png" or rep["accepted_files"][-1].endswith("solo.png")
    assert len(open_packed("merged", 32)) == 30


def test_more_broken_files(tmp_path):
    """Bombs below Pillow's own limit, PNGs cut short, corrupt headers, HEIC: refused with a reason."""
    from datasets_fixtures import bomb_png
    src = tmp_path / "broken"
    src.mkdir()
    full = png_bytes(pattern(8, (300, 200)))
    files = {"mid_bomb.png": bomb_png(12000, 12000), "cut.png": full[:-20], "cut_early.png": full[:200],
             "head.jpg": jpeg_bytes(pattern(8, (300, 200)))[:300],
             "phone.heic": b"\0\0\0\x18ftypheic" + b"\0" * 64}
    for name, data in files.items():
        (src / name).write_bytes(data)
    (src / "fine.png").write_bytes(full)
    rep = import_dataset([src], "broken").to_dict()
    reasons = {r["file"]: r["reason"] for r in rep["rejected"]}
    assert "bomb" in reasons["mid_bomb.png"] and "144 MP" in reasons["mid_bomb.png"]
    assert all("truncated" in reasons[f] for f in ("cut.png", "cut_early.png", "head.jpg")), reasons
    assert "HEIC" in reasons["phone.heic"]
    assert rep["accepted_files"] == ["fine.png"]
