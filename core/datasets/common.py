"""Limits, names and the import report shared by the dataset modules.

Every number a user can run into is defined here once, with the reason for its value.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field

from core import quota
from core.storage import human_bytes  # noqa: F401 - the dataset modules import it from here

# Limits from the original service: checked before any work is stored.
MAX_IMAGES = 25_000
MAX_TOTAL_BYTES = 5 * 1000**3          # 5 GB of source files (zip members: uncompressed size)
SUGGESTED_RANGE = (500, 5_000)
WARN_BELOW = 300
MIN_TO_TRAIN = 10                      # below this a model can only copy its few images: Start asks first

# Per-image limits.
MIN_SIZE = 64                          # px on the short side: below this an image carries too little to learn from
MAX_PIXELS = 100_000_000               # 100 MP declared in the header: refused before decoding (decompression bomb)
MAX_FILE_BYTES = 256 * 1024**2         # one image file; larger is refused unread

# Zip safety.
MAX_ZIP_MEMBERS = 50_000
MAX_ZIP_RATIO = 1_000                  # uncompressed/compressed above this (and > 16 MB) is a zip bomb

# Paths of dropped folders (uploads): checked before any folder is made.
MAX_UPLOAD_ENTRIES = MAX_ZIP_MEMBERS   # files described in one drop, as for a zip
MAX_PATH_DEPTH = 32                    # folders deep; real photo libraries are a few levels
MAX_NAME_BYTES = 255                   # one file or folder name: the file systems' NAME_MAX
MAX_PATH_CHARS = 1024                  # a whole relative path

# The normalised copy kept of each accepted image: enough for every packed resolution up to 1024.
# An image is downscaled only while it keeps >= STORE_SHORT_SIDE px on the short side and its long
# side exceeds STORE_LONG_SIDE; images already within the cap and in a plain format are kept as is.
STORE_SHORT_SIDE = 1024
STORE_LONG_SIDE = 2048
STORE_JPEG_QUALITY = 95

# Near-constant check on a 64x64 thumbnail (0..255 scale).
BLACK_MAX = 12                         # brightest pixel at or below this: "all black"
FLAT_STD = 3.0                         # every channel's std below this: "near-constant"
NEAR_DUP_BITS = 6                      # dHash (64 bit) Hamming distance at or below this: near-duplicate

CROP_MODES = ("center", "random", "none", "pad")
RESOLUTIONS = tuple(2**k for k in range(5, 11))        # 32 .. 1024
MAX_NAME_LENGTH = 100

IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".tga"}
VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
ARCHIVE_EXTS = {".zip"}

INFLATE_KEYS = {"mirror": bool, "rotate": bool, "zoom": int}


class DatasetError(ValueError):
    """A problem with the user's input or request, with a one-line message fit to show as is.

    ``report`` holds the :class:`ImportReport` when an import got far enough to have one
    (for example: every file was rejected)."""

    def __init__(self, message: str, report: "ImportReport | None" = None):
        super().__init__(message)
        self.report = report


class DatasetNotFound(DatasetError, LookupError):
    pass


class DatasetExists(DatasetError):
    pass


def validate_name(name: str) -> str:
    """A dataset's display name: trimmed, 1..100 printable characters, no path pieces."""
    if not isinstance(name, str):
        raise DatasetError("A dataset name must be text.")
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise DatasetError("A dataset needs a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise DatasetError(f"A dataset name can have at most {MAX_NAME_LENGTH} characters.")
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise DatasetError("A dataset name cannot contain '/', '\\' or '..'.")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise DatasetError("A dataset name cannot contain control characters.")
    return name


def validate_crop(crop: str) -> str:
    if crop not in CROP_MODES:
        raise DatasetError(f"Unknown crop mode {crop!r}: choose one of {', '.join(CROP_MODES)}.")
    return crop


def validate_resolution(resolution) -> int:
    try:
        r = int(resolution)
    except (TypeError, ValueError):
        raise DatasetError(f"Resolution must be a power of two from 32 to 1024, not {resolution!r}.") from None
    if r not in RESOLUTIONS:
        raise DatasetError(f"Resolution must be a power of two from 32 to 1024, not {resolution}.")
    return r


def validate_inflate(inflate: dict | None) -> dict:
    """``{'mirror': bool, 'rotate': bool, 'zoom': int}`` with every key present; all off by default."""
    out = {"mirror": False, "rotate": False, "zoom": 0}
    for key, value in (inflate or {}).items():
        if key not in INFLATE_KEYS:
            raise DatasetError(f"Unknown inflation {key!r}: choose from mirror, rotate, zoom.")
        out[key] = INFLATE_KEYS[key](value)
    if not 0 <= out["zoom"] <= 8:
        raise DatasetError("Zoomed crops per image must be between 0 and 8.")
    return out


def inflated_count(n: int, inflate: dict | None) -> int:
    """How many training images ``n`` accepted images become with ``inflate`` applied."""
    inf = validate_inflate(inflate)
    return n * (1 + int(inf["mirror"]) + 3 * int(inf["rotate"]) + inf["zoom"])


def packed_bytes_estimate(count: int, resolution: int, crop: str, inflate: dict | None) -> int:
    """About what packing ``count`` images takes: 3 bytes a pixel, a third more for random crops
    (they keep the long side)."""
    square = 3 * resolution * resolution * inflated_count(count, inflate)
    return square * 4 // 3 if crop == "random" else square


def storage_room(user: str, what: str = "this dataset") -> "quota.Room":
    """The user's storage room (see :mod:`core.quota`); a bad quota setting is a DatasetError."""
    try:
        return quota.room(user, what)
    except quota.QuotaError as e:
        raise DatasetError(str(e)) from None


def check_room(room: "quota.Room", need_bytes: int) -> None:
    """Refuse with the quota's one sentence, as a DatasetError (what the UI and the CLI show)."""
    try:
        room.check(need_bytes)
    except quota.QuotaExceeded as e:
        raise DatasetError(str(e)) from None


@dataclass
class ImportReport:
    """What an import did, file by file. ``to_dict()`` is the ``--json`` output."""
    name: str
    dataset_id: str | None = None
    total: int = 0                                   # files (and video frames) examined
    accepted: int = 0
    accepted_files: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)          # [{file, reason}]
    converted: dict[str, int] = field(default_factory=dict)     # {kind: count}
    converted_files: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[list[str]] = field(default_factory=list)   # every group: exact ones, then near ones
    exact_duplicates: list[list[str]] = field(default_factory=list)  # first file kept, the others dropped
    near_duplicates: list[list[str]] = field(default_factory=list)   # all kept; reported to review
    skipped: list[str] = field(default_factory=list)            # hidden files, __MACOSX: not counted
    warnings: list[str] = field(default_factory=list)
    crop: str = "center"
    resolution: int | None = None
    inflate: dict = field(default_factory=dict)
    training_images: int = 0                         # accepted after inflation
    bytes_stored: int = 0
    seconds: float = 0.0

    def reject(self, file: str, reason: str) -> None:
        self.rejected.append({"file": file, "reason": reason})

    def convert(self, file: str, kind: str) -> None:
        self.converted[kind] = self.converted.get(kind, 0) + 1
        self.converted_files.setdefault(kind, []).append(file)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["id"] = self.dataset_id
        return d
