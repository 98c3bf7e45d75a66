"""The catalog: the bundled default and the official StyleGAN2 checkpoints, and the rule for names.

Entries are data (name, title, URL, licence, size, architecture for the ETA); nothing here
touches the disk or the network. :func:`register_catalog_entry` adds one at run time (tests
against a local server, a site's own mirror).
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from .common import IMPORT_SUFFIXES, CheckpointsError

DEFAULT_NAME = "default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

NGC_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
TF_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
NGC_LICENCE = "NVIDIA Source Code License-NC (non-commercial research use only)"
TF_LICENCE = "CC BY-NC 4.0 (non-commercial use only; credit NVIDIA)"
NATIVE_LICENCE = ("Trained by Atelier on its emoji-faces sample dataset: Twemoji (CC BY 4.0) and Noto Emoji "
                  "(Apache 2.0) images, credited in static/datasets/NOTICE")


@dataclass(frozen=True)
class CatalogEntry:
    name: str                      # short id used everywhere: "ffhq-1024"
    title: str                     # for a card: "Faces (FFHQ)"
    depicts: str                   # what the images show, one sentence
    resolution: int                # output size in pixels (square)
    url: str | None                # None for the bundled default
    size_mb: int | None            # approximate download size
    size_exact: bool = False       # False: size_mb is an estimate from parameter counts
    licence: str = NGC_LICENCE
    format: str = "stylegan2-ada-pytorch pickle"
    sha256: str | None = None      # a known digest; None: recorded on first download
    bundled_path: str | None = None  # repo-relative file shipped with Atelier
    note: str = ""
    arch: dict = field(default_factory=dict)  # what the ETA needs (channel_base, mapping layers)

    @property
    def filename(self) -> str:
        """The cache file name: ``<name>`` plus the extension of the URL's file."""
        suffix = Path(urllib.parse.urlparse(self.url).path).suffix if self.url else ""
        return self.name + (suffix if suffix in IMPORT_SUFFIXES else ".pkl")

    @property
    def size_text(self) -> str:
        if self.size_mb is None:
            return "unknown size"
        return f"{self.size_mb:,} MB" if self.size_exact else f"about {self.size_mb:,} MB"


_A1024 = {"channel_base": 32768, "channel_max": 512, "mapping_layers": 8}
_P256 = {"channel_base": 16384, "channel_max": 512, "mapping_layers": 8}
_CIFAR = {"channel_base": 32768, "channel_max": 512, "mapping_layers": 2, "c_dim": 10}


def _ngc(name, title, depicts, res, size_mb, arch, exact=False, note=""):
    return CatalogEntry(name, title, depicts, res, NGC_BASE + f"stylegan2-{name.rsplit('-', 1)[0]}-{res}x{res}.pkl",
                        size_mb, exact, arch=arch, note=note)


def _tf(name, title, depicts, res, size_mb, note=""):
    return CatalogEntry(name, title, depicts, res, TF_BASE + f"stylegan2-{name.rsplit('-', 1)[0]}-config-f.pkl",
                        size_mb, False, TF_LICENCE, "TF-era StyleGAN2 pickle", note=note, arch=dict(_A1024))


# Sizes: ffhq-1024 is known; the others are estimated from parameter counts (G + G_ema + D in
# float32, calibrated on ffhq-1024) and shown as "about".
BUILT_IN = (
    CatalogEntry(DEFAULT_NAME, "Emoji faces (bundled)",
                 "Emoji faces and heads in the Twemoji and Noto designs, trained by Atelier on its sample "
                 "dataset; works offline, small and quick to fine-tune on CPU.", 64, None, None, licence=NATIVE_LICENCE,
                 format="Atelier native (safetensors + JSON)",
                 bundled_path="static/models/default.safetensors"),
    _ngc("ffhq-1024", "Faces (FFHQ)", "Photographs of human faces, aligned and cropped.", 1024, 364, _A1024, True),
    _ngc("ffhq-512", "Faces (FFHQ, 512)", "Photographs of human faces, aligned and cropped.", 512, 363, _A1024),
    _ngc("ffhq-256", "Faces (FFHQ, 256)", "Photographs of human faces, aligned and cropped.", 256, 298, _P256),
    _ngc("metfaces-1024", "Art faces (MetFaces)",
         "Faces from paintings, drawings and sculptures in the Metropolitan Museum of Art.", 1024, 364, _A1024),
    _ngc("afhqcat-512", "Cats (AFHQ)", "Close-up photographs of cat faces.", 512, 363, _A1024),
    _ngc("afhqdog-512", "Dogs (AFHQ)", "Close-up photographs of dog faces.", 512, 363, _A1024),
    _ngc("afhqwild-512", "Wild animals (AFHQ)",
         "Close-up photographs of wild animal faces: lions, tigers, foxes, wolves...", 512, 363, _A1024),
    _ngc("afhqv2-512", "Animal faces (AFHQv2)", "Cat, dog and wild animal faces (improved AFHQ).", 512, 363, _A1024),
    _ngc("brecahad-512", "Histology (BreCaHAD)",
         "Microscope images of breast cancer tissue (a small dataset).", 512, 363, _A1024),
    _ngc("celebahq-256", "Celebrity faces (CelebA-HQ)", "Photographs of celebrity faces.", 256, 298, _P256),
    _ngc("lsundog-256", "Dogs (LSUN)", "Photographs of dogs in all kinds of scenes.", 256, 298, _P256),
    _ngc("cifar10-32", "Tiny objects (CIFAR-10)",
         "Tiny 32 px images of 10 classes: planes, cars, birds, cats, deer, dogs, frogs, horses, "
         "ships, trucks.", 32, 246, _CIFAR, note="class-conditional: samples pick a class"),
    _tf("car-512", "Cars (LSUN)", "Photographs of cars.", 512, 363,
        note="512x384 images letterboxed into 512x512 (black bars top and bottom)"),
    _tf("cat-256", "Cats (LSUN)", "Photographs of cats, often indoors.", 256, 361),
    _tf("church-256", "Churches (LSUN)", "Photographs of church buildings outdoors.", 256, 361),
    _tf("horse-256", "Horses (LSUN)", "Photographs of horses, often with riders.", 256, 361),
)
_CATALOG: dict[str, CatalogEntry] = {e.name: e for e in BUILT_IN}


def catalog() -> list[CatalogEntry]:
    """Every catalog entry: the bundled default first, then the official checkpoints."""
    return list(_CATALOG.values())


def find_entry(name) -> CatalogEntry | None:
    """The catalog entry called ``name``, or None when it is not one (an imported name, say)."""
    return _CATALOG.get(name) if isinstance(name, str) else None


def get_entry(name: str) -> CatalogEntry:
    try:
        return _CATALOG[name]
    except KeyError:
        raise CheckpointsError(f"Unknown checkpoint {name!r}: see `python -m core.cli checkpoints list`") from None


def register_catalog_entry(entry: CatalogEntry) -> CatalogEntry:
    """Add (or replace) a catalog entry: for tests against a local server, or a site's own mirror."""
    check_name(entry.name)
    _CATALOG[entry.name] = entry
    return entry


def unregister_catalog_entry(name: str) -> None:
    _CATALOG.pop(name, None)


def check_name(name: str) -> str:
    """``name`` when it can name a checkpoint (1-64 plain characters, never path-like); else CheckpointsError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise CheckpointsError(
            f"Invalid checkpoint name {str(name)[:40]!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name
