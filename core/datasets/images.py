"""One image: decode with limits, validate, normalise to 8-bit RGB, crop to a square.

``process_item`` is the unit of work a worker process runs: it reads one source, refuses it with
a reason or stores its normalised copy, and returns the packed pixels and hashes to the parent.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import warnings

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from . import memory
from .common import (BLACK_MAX, FLAT_STD, MAX_FILE_BYTES, MAX_PIXELS, STORE_JPEG_QUALITY,
                     STORE_LONG_SIDE, STORE_SHORT_SIDE)
from .memory import decode_cost
from .sources import read_ref

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is refused, never padded with grey

_ORIENT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
           6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
THUMB = 64


class Reject(Exception):
    """This file cannot be used; the message is the reason shown to the user."""


def _open(data: bytes) -> Image.Image:
    if len(data) == 0:
        raise Reject("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise Reject("file too large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        mp = f"{int(m.group(1)) / 1e6:,.0f} MP" if m else "too many pixels"
        raise Reject(f"decompression bomb refused: the header declares {mp} "
                     f"(limit {MAX_PIXELS / 1e6:.0f} MP)") from None
    except UnidentifiedImageError:
        head = data[:12]
        if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
            raise Reject("HEIC/AVIF is not supported: export it as JPEG or PNG") from None
        raise Reject("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        if "truncated" in str(e).lower() or isinstance(e, EOFError):
            raise Reject("truncated: the file ends before the image does") from None
        raise Reject(f"corrupt or truncated image ({str(e)[:100]})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise Reject(f"decompression bomb refused: the header declares {w}x{h} "
                     f"({w * h / 1e6:.0f} MP, limit {MAX_PIXELS / 1e6:.0f} MP)")
    if w <= 0 or h <= 0:
        raise Reject("corrupt image header (zero size)")
    return img


def _is_16bit(img: Image.Image, data: bytes | None) -> bool:
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return True
    if img.format == "PNG" and data is not None and len(data) > 24 and data[12:16] == b"IHDR":
        return data[24] == 16
    if img.format == "TIFF":
        bps = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
        return bool(bps) and max(bps if isinstance(bps, tuple) else (bps,)) > 8
    return False


def _to_rgb(img: Image.Image, background, notes: list[str], bit16: bool) -> Image.Image:
    """Any mode -> 8-bit RGB; each conversion is named in ``notes``."""
    mode = img.mode
    if bit16:
        notes.append("16bit")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = Image.fromarray(to_8bit(np.asarray(img), unit_range=mode == "F"), "L")
        mode = "L"
    if mode in ("1", "L", "LA", "La"):
        notes.append("grayscale")
    elif mode in ("P", "PA"):
        notes.append("palette")
        has_alpha = mode == "PA" or "transparency" in img.info or img.palette.mode == "RGBA"
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    elif mode == "CMYK":
        notes.append("cmyk")
    elif mode not in ("RGB", "RGBA", "RGBa", "LA"):
        notes.append("color_mode")
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "L" and "transparency" in img.info):
        notes.append("alpha")
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        out = Image.new("RGB", rgba.size, tuple(background))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img if img.mode == "RGB" else img.convert("RGB")


def to_8bit(a: np.ndarray, unit_range: bool, band_pixels: int = 1 << 20) -> np.ndarray:
    """16-bit or float pixels as uint8 (float images in 0..1 are scaled by 255, others by 1/257),
    converted a band of rows at a time so a 100 MP image needs no full-size float copy."""
    up = unit_range and a.max(initial=0) <= 1.0
    out = np.empty(a.shape, dtype=np.uint8)
    rows = max(1, band_pixels // max(1, a.shape[1]))
    for r in range(0, a.shape[0], rows):
        band = a[r:r + rows].astype(np.float64)
        band = band * 255.0 if up else band / 257.0
        out[r:r + rows] = np.clip(np.rint(band), 0, 255)
    return out


def _check_content(small: np.ndarray) -> None:
    if small.max() <= BLACK_MAX:
        raise Reject("all black")
    std = small.reshape(-1, small.shape[-1]).std(axis=0).max()
    if std < FLAT_STD:
        raise Reject(f"near-constant: almost a single colour (spread {std:.1f} of 255)")


def dhash(gray9x8: np.ndarray) -> int:
    """64-bit difference hash of a 9x8 (w x h) grayscale thumbnail."""
    bits = (gray9x8[:, 1:] > gray9x8[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def center_square(w: int, h: int) -> tuple[int, int, int, int]:
    s = min(w, h)
    x, y = (w - s) // 2, (h - s) // 2
    return (x, y, x + s, y + s)


def to_training(img: Image.Image, resolution: int, crop: str, background=(255, 255, 255)) -> Image.Image:
    """What the packed store keeps for ``crop``: the final square, or for ``random`` the image with
    its short side at ``resolution`` (the square is cut each time it is drawn)."""
    w, h = img.size
    r = resolution
    if crop == "center":
        return img.resize((r, r), Image.Resampling.LANCZOS, box=center_square(w, h), reducing_gap=2.0)
    if crop == "none":
        return img.resize((r, r), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if crop == "random":
        s = r / min(w, h)
        size = (max(r, round(w * s)), max(r, round(h * s)))
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    if crop == "pad":
        s = r / max(w, h)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        out = Image.new("RGB", (r, r), tuple(background))
        out.paste(img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0), ((r - size[0]) // 2, (r - size[1]) // 2))
        return out
    raise ValueError(crop)


def inflate_variants(img: Image.Image, inflate: dict, seed: int) -> list[Image.Image]:
    """The image itself, then its mirrored copy, 90/180/270 rotations and zoomed crops as asked."""
    out = [img]
    if inflate.get("mirror"):
        out.append(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    if inflate.get("rotate"):
        out += [img.transpose(t) for t in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)]
    if inflate.get("zoom"):
        rng = np.random.default_rng(seed)
        w, h = img.size
        cw, ch = max(1, round(w * 0.75)), max(1, round(h * 0.75))
        for _ in range(inflate["zoom"]):
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            out.append(img.resize((w, h), Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch)))
    return out


def chw(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))


def _store_scale(w: int, h: int) -> float:
    s = max(STORE_SHORT_SIDE / min(w, h), STORE_LONG_SIDE / max(w, h))
    return min(1.0, s)


def decoded_size(img: Image.Image) -> tuple[int, int]:
    """At most the size ``decode`` decodes ``img`` at: a JPEG is decoded at the DCT scale (1/2, 1/4,
    1/8) that keeps both sides at least STORE_SHORT_SIDE (or smaller still, for a pack-only need)."""
    w, h = img.size
    if img.format not in ("JPEG", "MPO"):
        return w, h
    scale = min(w // STORE_SHORT_SIDE, h // STORE_SHORT_SIDE)
    a = next((a for a in (8, 4, 2, 1) if scale >= a), 1)
    return (w + a - 1) // a, (h + a - 1) // a


def decode(data: bytes | None, *, frame=None, want: int, background=(255, 255, 255), min_size: int = 1,
           reserve=None):
    """Decode one image with every check. Returns ``(rgb, notes, header_size, verbatim)``.

    ``want`` is the smallest short side the caller needs (JPEGs are decoded at a reduced scale
    down to it). ``verbatim`` is True when the file itself is already a normalised copy: an 8-bit
    RGB JPEG or PNG, upright, without alpha, within the store cap; then it can be kept byte for byte.
    ``reserve(nbytes)``, when given, is called with what decoding will take at most
    (:func:`memory.decode_cost` of :func:`decoded_size`) after the header is read and before any
    pixel is decoded; it may wait for memory.
    """
    notes: list[str] = []
    if frame is not None:
        w, h, rgb = frame
        if min(w, h) < min_size:
            raise Reject(f"too small: {w}x{h} px (minimum {min_size} px on the short side)")
        if reserve is not None:
            reserve(decode_cost("RGB", w, h, len(rgb)))
        return Image.frombytes("RGB", (w, h), rgb), notes, (w, h), False
    img = _open(data)
    w, h = img.size
    if min(w, h) < min_size:
        raise Reject(f"too small: {w}x{h} px (minimum {min_size} px on the short side)")
    if reserve is not None:  # before getexif: for a PNG it decodes the whole image
        reserve(decode_cost(img.mode, *decoded_size(img), len(data)))
    if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":  # MPO: a JPEG with a preview
        notes.append("animated")
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    bit16 = _is_16bit(img, data)
    verbatim = (img.format in ("JPEG", "PNG") and img.mode == "RGB" and not bit16 and orientation not in _ORIENT
                and "transparency" not in img.info and not notes and _store_scale(w, h) == 1.0)
    if img.format in ("JPEG", "MPO"):
        img.draft(None, (want, want) if verbatim else (STORE_SHORT_SIDE, STORE_SHORT_SIDE))
    try:
        img.load()
    except Image.DecompressionBombError:
        raise Reject("decompression bomb refused") from None
    except (OSError, SyntaxError, EOFError, ValueError, IndexError, MemoryError, TypeError) as e:
        msg = str(e) or e.__class__.__name__
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise Reject("truncated: the file ends before the image does") from None
        raise Reject(f"corrupt or truncated image ({msg[:100]})") from None
    if img.format == "PNG" and data is not None and data.rfind(b"IEND", -64) < 0:
        raise Reject("truncated: the PNG file ends before its end marker")
    img = _to_rgb(img, background, notes, bit16)
    if orientation in _ORIENT:
        notes.append("exif_orientation")
        img = img.transpose(_ORIENT[orientation])
    if not verbatim:
        s = _store_scale(*img.size)
        if s < 1.0:
            size = (round(img.width * s), round(img.height * s))
            img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return img, notes, (w, h), verbatim


def fingerprint(img: Image.Image) -> tuple[bytes, int, np.ndarray]:
    """(exact pixel hash, 64-bit dHash, 64x64 RGB thumbnail array) of a normalised image, after
    refusing all-black and near-constant images."""
    thumb = img.resize((THUMB, THUMB), Image.Resampling.BOX, reducing_gap=2.0)
    small = np.asarray(thumb, dtype=np.uint8)
    _check_content(small)
    gray = thumb.convert("L").resize((9, 8), Image.Resampling.BOX)
    h = hashlib.blake2b(img.tobytes(), digest_size=16)
    h.update(repr(img.size).encode())
    return h.digest(), dhash(np.asarray(gray, dtype=np.int16)), small


def process_item(task: dict) -> dict:
    """Run in a worker: read, validate, store the normalised copy, pack. Never raises.

    The memory an image takes is reserved from the decoding budget (``memory.current_budget``: the
    pool's, or this process's) from the moment its header is read until its result is ready."""
    out = {"index": task["index"], "label": task["label"]}
    try:
        with contextlib.ExitStack() as held:
            _process(task, out, reserve=lambda nbytes: held.enter_context(memory.hold(nbytes)))
    except Reject as e:
        out.update(ok=False, reason=str(e))
    except MemoryError:
        out.update(ok=False, reason="too large to decode in memory")
    except Exception as e:  # a decoder bug must not end the import: report the file instead
        out.update(ok=False, reason=f"unreadable ({e.__class__.__name__}: {str(e)[:100]})")
    return out


def _process(task: dict, out: dict, reserve) -> None:
    i, ref, opt = task["index"], task["ref"], task["opt"]
    data = None if ref[0] == "frame" else read_ref(ref)
    frame = ref[1:] if ref[0] == "frame" else None
    want = opt["resolution"] or 128
    img, notes, size, verbatim = decode(data, frame=frame, want=want, background=opt["background"],
                                        min_size=opt["min_size"], reserve=reserve)
    digest, dh, small = fingerprint(img)
    if opt.get("store_dir"):
        if verbatim:
            ext = ".jpg" if img.format == "JPEG" or (data[:2] == b"\xff\xd8") else ".png"
            stored, blob = f"{i:06d}{ext}", data
        else:
            lossy = frame is not None or (data is not None and data[:2] == b"\xff\xd8")
            buf = io.BytesIO()
            if lossy:
                img.save(buf, "JPEG", quality=STORE_JPEG_QUALITY)
            else:
                img.save(buf, "PNG", compress_level=1)
            stored, blob = f"{i:06d}{'.jpg' if lossy else '.png'}", buf.getvalue()
        with open(os.path.join(opt["store_dir"], stored), "wb") as f:
            f.write(blob)
        out.update(stored=stored, stored_bytes=len(blob), stored_size=size if verbatim else img.size)
    if opt["resolution"]:
        base = to_training(img, opt["resolution"], opt["crop"], opt["background"])
        out["packed"] = [chw(v) for v in inflate_variants(base, opt["inflate"], seed=i)]
    out.update(ok=True, notes=notes, digest=digest, dhash=dh, thumb=small, size=size, short=min(size))
