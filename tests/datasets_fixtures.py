"""Generated test material for the dataset tests: a messy folder with every kind of problem."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pattern(seed: int, size=(160, 120)) -> Image.Image:
    """A distinct, textured RGB image (random blobs upscaled: distinct dHashes)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=kw.pop("quality", 92), **kw)
    return buf.getvalue()


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def bomb_png(width=60000, height=60000) -> bytes:
    """A tiny PNG whose header declares a huge image."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# name -> expected outcome: "ok", a conversion kind ("grayscale", ...), or "reject:<words in reason>"
def make_messy_folder(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "__MACOSX").mkdir()
    expect: dict[str, str] = {}

    def put(name, data, outcome):
        (root / name).write_bytes(data)
        expect[name] = outcome

    for k in range(4):
        put(f"good_{k}.jpg", jpeg_bytes(pattern(k)), "ok")
    put("good_png.png", png_bytes(pattern(10)), "ok")
    put("UPPER.JPG", jpeg_bytes(pattern(11)), "ok")
    put("sub/nested.jpeg", jpeg_bytes(pattern(12)), "ok")
    put("sub/deeper/nested2.webp", _save(pattern(13), "WEBP", quality=90), "ok")
    put("zero.jpg", b"", "reject:empty")
    put("truncated.jpg", jpeg_bytes(pattern(20, (400, 300)))[:3000], "reject:truncated")
    put("text.png", b"hello, this is not an image\n" * 10, "reject:not an image")
    put("black.png", png_bytes(Image.new("RGB", (128, 128))), "reject:black")
    put("flat.png", png_bytes(Image.new("RGB", (128, 128), (120, 130, 140))), "reject:near-constant")
    put("tiny.png", png_bytes(pattern(21, (40, 30))), "reject:too small")
    put("bomb.png", bomb_png(), "reject:bomb")
    frames = [pattern(22), pattern(23)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("animated.gif", buf.getvalue(), "animated")
    put("gray.jpg", jpeg_bytes(pattern(24).convert("L")), "grayscale")
    put("palette.png", png_bytes(pattern(25).convert("P", palette=Image.Palette.ADAPTIVE)), "palette")
    put("cmyk.jpg", jpeg_bytes(pattern(26).convert("CMYK")), "cmyk")
    a16 = (np.asarray(pattern(27).convert("L"), dtype=np.uint16) * 257)
    put("deep16.png", png_bytes(Image.fromarray(a16)), "16bit")
    rgba = pattern(28).convert("RGBA")
    alpha = np.full((120, 160), 255, np.uint8)
    alpha[:, :40] = 0
    rgba.putalpha(Image.fromarray(alpha))
    put("alpha.png", png_bytes(rgba), "alpha")
    exif = Image.Exif()
    exif[0x0112] = 6
    put("rotated.jpg", jpeg_bytes(pattern(29), exif=exif.tobytes()), "exif_orientation")
    put("dup_of_good_0.jpg", (root / "good_0.jpg").read_bytes(), "reject:duplicate")
    near = pattern(1).resize((144, 108), Image.Resampling.LANCZOS)
    put("near_good_1.jpg", jpeg_bytes(near, quality=70), "near")
    put("notes.txt", b"some notes", "reject:not an image")
    # skipped silently
    (root / ".hidden.jpg").write_bytes(jpeg_bytes(pattern(40)))
    (root / "__MACOSX" / "._good_0.jpg").write_bytes(b"\0\5\26\7junk")
    return expect


def _save(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()
