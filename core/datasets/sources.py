"""Where images come from: folders, zip files, videos and single files, merged in order.

``plan_sources`` only lists and counts (it reads no pixels), so the dataset limits are checked
before any work is stored. ``iter_items`` then yields one ``(label, ref)`` per image; a ref is a
small picklable tuple a worker process can read on its own:

    ("file", path)                     a file on disk
    ("zip", zip_path, member_name)     a member read straight from the archive, never extracted
    ("frame", width, height, rgb)      one decoded video frame
"""
from __future__ import annotations

import math
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .common import (ARCHIVE_EXTS, MAX_FILE_BYTES, MAX_IMAGES, MAX_NAME_BYTES, MAX_PATH_CHARS, MAX_PATH_DEPTH,
                     MAX_TOTAL_BYTES, MAX_ZIP_MEMBERS, MAX_ZIP_RATIO, VIDEO_EXTS, DatasetError, human_bytes)


@dataclass
class Video:
    label: str
    path: Path
    frames: int                     # estimate from duration x fps
    fps: float


@dataclass
class Plan:
    """Everything the sources hold, in order: entries are (label, ref) or a :class:`Video`."""
    entries: list = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)   # refused unread: (label, reason)
    skipped: list[str] = field(default_factory=list)
    total_bytes: int = 0

    @property
    def count(self) -> int:
        return sum(e.frames if isinstance(e, Video) else 1 for e in self.entries)


def _hidden(parts) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" or p == "Thumbs.db" or p == "desktop.ini" for p in parts)


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def plan_sources(sources, *, video_fps: float = 2.0) -> Plan:
    """List every image in ``sources`` (paths of folders, zips, videos or images) without decoding."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [Path(s) for s in sources]
    if not sources:
        raise DatasetError("Give at least one folder, zip, video or image to import.")
    plan = Plan()
    prefix_needed = len(sources) > 1
    for src in sources:
        if not src.exists():
            raise DatasetError(f"No such file or folder: {src}")
        prefix = src.name + "/" if prefix_needed else ""
        if src.is_dir():
            _plan_folder(plan, src, prefix, video_fps)
        elif _ext(src.name) in ARCHIVE_EXTS:
            _plan_zip(plan, src, prefix)
        elif _ext(src.name) in VIDEO_EXTS:
            _plan_video(plan, src, src.name, video_fps)
        else:
            _plan_file(plan, src, src.name)
        _check_limits(plan)
    return plan


def _check_limits(plan: Plan) -> None:
    if plan.count > MAX_IMAGES:
        raise DatasetError(f"The sources hold {plan.count:,} images; a dataset can have at most "
                           f"{MAX_IMAGES:,}. Choose fewer (500 to 5,000 is plenty).")
    if plan.total_bytes > MAX_TOTAL_BYTES:
        raise DatasetError(f"The sources hold {human_bytes(plan.total_bytes)}; a dataset can have at "
                           f"most {human_bytes(MAX_TOTAL_BYTES)}.")


def _plan_file(plan: Plan, path: Path, label: str) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        plan.rejected.append((label, f"file too large ({human_bytes(size)}; at most {human_bytes(MAX_FILE_BYTES)})"))
        return
    plan.total_bytes += size
    plan.entries.append((label, ("file", str(path))))


def _plan_folder(plan: Plan, root: Path, prefix: str, video_fps: float) -> None:
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        for d in dirnames:
            if _hidden([d]):
                plan.skipped.append(prefix + (rel_dir / d).as_posix() + "/")
        dirnames[:] = [d for d in dirnames if not _hidden([d])]
        for fn in filenames:
            rel = (rel_dir / fn).as_posix()
            if _hidden([fn]):
                plan.skipped.append(prefix + rel)
                continue
            files.append(rel)
    for rel in sorted(files, key=lambda r: (r.casefold(), r)):
        path = root / rel
        label = prefix + rel
        if path.is_symlink() or not path.is_file():
            plan.rejected.append((label, "not a regular file (links are not followed)"))
        elif _ext(rel) in VIDEO_EXTS:
            _plan_video(plan, path, label, video_fps)
        elif _ext(rel) in ARCHIVE_EXTS:
            plan.rejected.append((label, "an archive inside a folder: import the .zip as its own source"))
        else:
            _plan_file(plan, path, label)
        if len(plan.entries) > MAX_IMAGES:
            _check_limits(plan)


def unsafe_member(name: str) -> str | None:
    """Why a zip member name is refused, or None when it is a plain relative path."""
    if "\0" in name:
        return "unsafe name in zip (NUL byte)"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "unsafe path in zip (absolute path refused)"
    if ".." in PurePosixPath(norm).parts:
        return "unsafe path in zip ('..' refused)"
    return None


def clean_upload_path(path: str) -> str:
    """A dropped file's relative path (``photos/2019/a.png``) as a plain relative path to stage it
    under: empty, ``.`` and ``..`` parts dropped. Raises DatasetError (one line) for a NUL byte or
    a control character, a name longer than MAX_NAME_BYTES, more than MAX_PATH_DEPTH levels or
    MAX_PATH_CHARS characters: refused before anything is made on disk."""
    if not isinstance(path, str):
        raise DatasetError("A dropped file's path must be text.")
    if "\0" in path:
        raise DatasetError("A dropped file's path holds a NUL byte.")
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    if len(parts) > MAX_PATH_DEPTH + 1:
        raise DatasetError(f"A dropped file lies {len(parts) - 1:,} folders deep; at most {MAX_PATH_DEPTH} are read.")
    if len(path) > MAX_PATH_CHARS:
        raise DatasetError(f"A dropped file's path is {len(path):,} characters long; "
                           f"at most {MAX_PATH_CHARS:,} are read.")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise DatasetError(f"A dropped file or folder name is longer than {MAX_NAME_BYTES} bytes: "
                               f"{part[:40]!r}...")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
            raise DatasetError(f"A dropped file or folder name holds a control character: {part[:40]!r}.")
    return "/".join(parts)


def _plan_zip(plan: Plan, path: Path, prefix: str) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{path.name} is not a readable zip file ({e}).") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise DatasetError(f"{path.name} holds {len(infos):,} entries; at most {MAX_ZIP_MEMBERS:,} are read.")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise DatasetError(f"{path.name} unpacks to {human_bytes(total)}; a dataset can have at most "
                               f"{human_bytes(MAX_TOTAL_BYTES)}.")
        for info in sorted(infos, key=lambda i: (i.filename.casefold(), i.filename)):
            name = info.filename
            label = prefix + name
            if info.is_dir():
                continue
            why = unsafe_member(name)
            if why is None and _hidden(PurePosixPath(name.replace("\\", "/")).parts):
                plan.skipped.append(label)
                continue
            mode = info.external_attr >> 16
            if why:
                pass
            elif stat.S_ISLNK(mode):
                why = "symbolic link in zip (refused)"
            elif info.flag_bits & 0x1:
                why = "encrypted zip member (cannot read)"
            elif info.file_size > MAX_FILE_BYTES:
                why = f"file too large ({human_bytes(info.file_size)}; at most {human_bytes(MAX_FILE_BYTES)})"
            elif info.file_size > 16 * 1024**2 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
                why = "zip bomb refused (compression ratio too high)"
            elif _ext(name) in VIDEO_EXTS | ARCHIVE_EXTS:
                why = "videos and archives inside a zip are not read: import them as their own source"
            if why:
                plan.rejected.append((label, why))
                continue
            plan.total_bytes += info.file_size
            plan.entries.append((label, ("zip", str(path), name)))


def _plan_video(plan: Plan, path: Path, label: str, fps: float) -> None:
    import imageio_ffmpeg
    if not fps > 0:
        raise DatasetError("Frames per second for videos must be above 0.")
    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        gen.close()
    except Exception as e:  # ffmpeg's errors are long; keep the first line
        plan.rejected.append((label, f"unreadable video ({str(e).strip().splitlines()[0][:120]})"))
        return
    duration = float(meta.get("duration") or 0.0)
    frames = max(1, math.ceil(duration * fps)) if duration > 0 else 1
    plan.total_bytes += path.stat().st_size
    plan.entries.append(Video(label, path, frames, fps))


def iter_items(plan: Plan, max_items: int = MAX_IMAGES):
    """Yield ``(label, ref)`` for every image in the plan; video frames are decoded here, lazily."""
    n = 0
    for entry in plan.entries:
        if isinstance(entry, Video):
            for label, ref in _video_frames(entry):
                if n >= max_items:
                    return
                n += 1
                yield label, ref
        else:
            if n >= max_items:
                return
            n += 1
            yield entry


def _video_frames(video: Video):
    import imageio_ffmpeg
    gen = imageio_ffmpeg.read_frames(str(video.path), output_params=["-vf", f"fps={video.fps:g}"])
    try:
        meta = next(gen)
        w, h = meta["size"]
        for i, frame in enumerate(gen):
            yield f"{video.label}#frame{i:05d}", ("frame", w, h, bytes(frame))
    finally:
        gen.close()


_zip_cache: dict[str, zipfile.ZipFile] = {}


def read_ref(ref) -> bytes:
    """The bytes of a file or zip member (at most MAX_FILE_BYTES + 1 are read)."""
    kind = ref[0]
    if kind == "file":
        with open(ref[1], "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    if kind == "zip":
        zf = _zip_cache.get(ref[1])
        if zf is None:
            if len(_zip_cache) > 8:
                for z in _zip_cache.values():
                    z.close()
                _zip_cache.clear()
            zf = _zip_cache[ref[1]] = zipfile.ZipFile(ref[1])
        with zf.open(ref[2]) as f:
            return f.read(MAX_FILE_BYTES + 1)
    raise ValueError(f"not a byte source: {kind}")
